"""Stage 1 of World Models: random rollouts of the game, saved to the run directory."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from wmlib.agents.world_models.config import DATA_SEED, WorldModelsConfig, _as_run
from wmlib.agents.world_models.game import (
    _WORKER,
    _one_thread_in_workers,
    make_env,
    random_data_policy,
    run_policy,
)
from wmlib.evolution import Evaluator
from wmlib.progress import tqdm


def _init_collect_worker(cfg_dict: dict) -> None:
    _one_thread_in_workers()
    cfg = WorldModelsConfig(**cfg_dict)
    _WORKER.update(cfg=cfg, env=make_env(cfg))


def _collect_one(index: int, path: str) -> int:
    cfg, env = _WORKER["cfg"], _WORKER["env"]
    seed = DATA_SEED + cfg.seed * 100_000 + index  # seed 0: the tracks of the committed runs
    policy = random_data_policy(cfg, np.random.default_rng(seed))
    ep = run_policy(env, policy, seed=seed, max_steps=cfg.rollout_steps, frames=True)
    done = np.zeros(ep["steps"] + 1, bool)
    done[-1] = ep["terminated"]
    tmp = Path(path + ".tmp.npz")
    np.savez_compressed(tmp, obs=ep["obs"], action=ep["action"], reward=ep["reward"], done=done)
    tmp.replace(path)
    return ep["steps"]


def collect_rollouts(cfg: WorldModelsConfig, run_dir, progress: bool = True) -> list[Path]:
    """Stage 1: ``cfg.rollouts`` random rollouts saved to ``run_dir/rollouts/*.npz`` (obs as
    uint8 (T+1, 3, 64, 64), action, reward, done, aligned as :mod:`wmlib.replay`). Rollouts
    already on disk are kept."""
    run = _as_run(cfg, run_dir)
    folder = run.dir / "rollouts"
    folder.mkdir(exist_ok=True)
    paths = [folder / f"rollout_{i:05d}.npz" for i in range(cfg.rollouts)]
    todo = [(i, str(p)) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        start = time.time()
        steps = 0
        bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="random rollouts",
                   disable=not progress)
        with Evaluator(_collect_one, cfg.workers, _init_collect_worker, (asdict(cfg),)) as ev:
            chunk = max(cfg.workers, 1) * 2
            for k in range(0, len(todo), chunk):
                steps += sum(ev.map(todo[k : k + chunk]))
                bar.update(len(todo[k : k + chunk]))
        bar.close()
        seconds = time.time() - start
        run.add_time("rollouts", seconds)
        run.log(f"rollouts: {len(todo)} new, {steps} steps in {seconds:.0f} s "
                f"({steps / seconds:.0f} steps/s with {cfg.workers} workers)")
    return paths


def load_rollout(path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
