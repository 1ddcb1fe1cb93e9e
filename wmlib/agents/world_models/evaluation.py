"""Stage 6 of World Models: a controller (or random actions) on fresh tracks."""

from __future__ import annotations

import json
import time

import numpy as np

from wmlib.agents.world_models.config import EVAL_SEED, WorldModelsConfig, _as_run
from wmlib.agents.world_models.game import _init_real_worker, _real_fitness, _worker_args
from wmlib.agents.world_models.memory import load_mdnrnn
from wmlib.agents.world_models.vision import load_vae
from wmlib.evolution import Evaluator
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import VAE
from wmlib.progress import tqdm


def evaluate_controller(cfg: WorldModelsConfig, run_dir, name: str, params: np.ndarray | None,
                        use_hidden: bool = True, episodes: int | None = None,
                        vae: VAE | None = None, mdnrnn: MDNRNN | None = None,
                        progress: bool = True) -> dict:
    """Stage 6: full-length episodes on ``episodes`` random tracks (seeds never used in
    training); ``params=None`` evaluates uniformly random actions. Saved as
    ``run_dir/eval_<name>.json`` and read back on a rerun with the same number of episodes
    (delete the file to evaluate new parameters under the same name)."""
    run = _as_run(cfg, run_dir)
    episodes = cfg.eval_episodes if episodes is None else episodes
    path = run.dir / f"eval_{name}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["episodes"] == episodes:
            return saved
    vae = vae if vae is not None else load_vae(cfg, run.dir)
    m = mdnrnn if mdnrnn is not None else load_mdnrnn(cfg, run.dir)
    start = time.time()
    args = _worker_args(cfg, vae, m, use_hidden, cfg.eval_max_steps, None)
    seeds = [EVAL_SEED + i for i in range(episodes)]
    returns = []
    with Evaluator(_real_fitness, cfg.workers, _init_real_worker, args) as ev:
        for s in tqdm(range(0, episodes, cfg.workers), desc=f"evaluating {name}",
                      disable=not progress):
            returns += ev.map([(params, seed) for seed in seeds[s : s + cfg.workers]])
    seconds = time.time() - start
    out = {"name": name, "episodes": episodes, "returns": [round(r, 1) for r in returns],
           "mean": round(float(np.mean(returns)), 1), "std": round(float(np.std(returns)), 1),
           "seconds": round(seconds, 1)}
    path.write_text(json.dumps(out))
    run.add_time(f"eval_{name}", seconds)
    run.log(f"evaluation {name}: {out['mean']} +- {out['std']} over {episodes} tracks "
            f"({seconds:.0f} s): {out['returns']}")
    return out
