"""Stage 5 of World Models: C evolved by CMA-ES, in the real game or inside M's dream."""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from wmlib import devices
from wmlib.agents.world_models.config import SELECT_SEED, WorldModelsConfig, _as_run
from wmlib.agents.world_models.game import (
    _init_real_worker,
    _real_fitness,
    _worker_args,
    make_controller,
)
from wmlib.agents.world_models.memory import load_mdnrnn
from wmlib.agents.world_models.vision import encode_dataset, load_vae
from wmlib.evolution import Evaluator, cmaes
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import VAE


def train_controller(cfg: WorldModelsConfig, run_dir, name: str = "real_zh",
                     where: str = "real", use_hidden: bool = True,
                     generations: int | None = None, vae: VAE | None = None,
                     mdnrnn: MDNRNN | None = None, progress: bool = True,
                     device=None, temperature: float | None = None) -> dict:
    """Stage 5: evolve C with CMA-ES in the real environment (``where="real"``: episodes in CPU
    worker processes, which get V and M on the CPU) or in M's dream (``where="dream"``: one
    batch on M's device); search state, history and parameters in ``run_dir/C_<name>``.

    Returns ``params`` (the chosen controller: the final mean of the search distribution, or,
    with ``cfg.select_rollouts``, whichever of the mean and the best sample scores higher on that
    many extra tracks; the best sample's fitness is a lucky single draw, the mean usually
    drives better on new tracks), the
    :class:`~wmlib.evolution.ESResult` as ``es``, and ``seconds``. ``temperature``: the
    dream's tau (default ``cfg.dream_temperature``).
    """
    if where not in ("real", "dream"):
        raise ValueError(f"where must be 'real' or 'dream', got {where!r}")
    run = _as_run(cfg, run_dir)
    folder = run.dir / f"C_{name}"
    vae = vae if vae is not None else load_vae(cfg, run.dir, device)
    m = mdnrnn if mdnrnn is not None else load_mdnrnn(cfg, run.dir, device)
    c = make_controller(cfg, use_hidden)
    x0 = np.zeros(c.num_params)
    start = time.time()
    if where == "real":
        gens = cfg.generations if generations is None else generations
        args = _worker_args(cfg, vae, m, use_hidden, cfg.train_max_steps, cfg.patience)
        es = cmaes(_real_fitness, x0, cfg.sigma0, cfg.popsize, gens,
                   rollouts=cfg.rollouts_per_candidate, workers=cfg.workers,
                   initializer=_init_real_worker, initargs=args, seed=cfg.seed,
                   run_dir=folder, progress=progress, desc=f"C {name} (real)", log=run.log,
                   weight_decay=cfg.es_weight_decay)
    else:
        from wmlib.dream import dream_returns

        gens = cfg.dream_generations if generations is None else generations
        tau = cfg.dream_temperature if temperature is None else temperature
        series = encode_dataset(cfg, run.dir, vae, progress=False)
        dev = m.mdn.weight.device
        z0_all = devices.to_device(series["mu"][series["starts"][:-1]], dev)

        def batch_fitness(params, seeds):
            g = devices.generator(dev, seeds[0])
            pick = torch.randint(0, len(z0_all), (cfg.dream_rollouts,), generator=g, device=dev)
            return dream_returns(m, params, z0_all[pick], use_hidden=use_hidden,
                                 temperature=tau, steps=cfg.dream_steps, generator=g,
                                 low=cfg.action_low, high=cfg.action_high,
                                 brake_clip=cfg.brake_clip, reward=cfg.dream_reward).mean(1)

        es = cmaes(None, x0, cfg.sigma0, cfg.dream_popsize, gens, batch_fitness=batch_fitness,
                   rollouts=cfg.dream_rollouts, seed=cfg.seed, run_dir=folder,
                   progress=progress, desc=f"C {name} (dream)", log=run.log,
                   weight_decay=cfg.es_weight_decay)
    chosen = folder / "params.npy"
    if chosen.exists() and json.loads((folder / "choice.json").read_text())["generations"] \
            == es.generations:
        params = np.load(chosen)
    else:
        params, choice = es.mean_params, {"chosen": "mean"}
        if cfg.select_rollouts > 0:
            seeds = [SELECT_SEED + i for i in range(cfg.select_rollouts)]
            args = _worker_args(cfg, vae, m, use_hidden, cfg.train_max_steps, None)
            with Evaluator(_real_fitness, cfg.workers, _init_real_worker, args) as ev:
                scores = ev.map([(p, s) for p in (es.mean_params, es.best_params)
                                 for s in seeds])
            mean_score = float(np.mean(scores[: len(seeds)]))
            best_score = float(np.mean(scores[len(seeds) :]))
            if mean_score >= best_score:
                params = es.mean_params
            choice = {"chosen": "mean" if mean_score >= best_score else "best sample",
                      "mean_score": mean_score, "best_score": best_score}
        np.save(chosen, params)
        (folder / "choice.json").write_text(json.dumps(choice | {"generations": es.generations}))
        run.log(f"C {name}: {choice}")
    seconds = time.time() - start
    if seconds > 5:
        run.add_time(f"C_{name}", seconds)
    return {"params": params, "es": es, "seconds": seconds, "use_hidden": use_hidden}
