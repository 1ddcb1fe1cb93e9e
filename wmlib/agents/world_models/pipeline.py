"""World Models' whole pipeline: the six stages in order, resumed from a run directory,
and its results (`run`, ``python -m wmlib world-models``)."""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

from wmlib import devices
from wmlib.agents.world_models.config import CONFIGS, Run, WorldModelsConfig, default_run_dir
from wmlib.agents.world_models.controller import train_controller
from wmlib.agents.world_models.evaluation import evaluate_controller
from wmlib.agents.world_models.memory import train_mdnrnn
from wmlib.agents.world_models.rollouts import collect_rollouts
from wmlib.agents.world_models.vision import encode_dataset, train_vae


def run(profile: str | None = None, run_dir=None, record: bool = True, progress: bool = True,
        verbose: bool = True, device=None, **overrides) -> dict:
    """All stages in order, resuming from whatever ``run_dir`` holds, then the results:
    the z+h controller and the z-only ablation trained in the real environment, the controller
    trained in the dream, and the random policy, each evaluated on ``eval_episodes`` tracks.
    Writes ``results/ch02_world_models_<profile>.json`` unless ``record=False`` or smoke.
    V, M and the dream run on ``device`` (default: the session's); the real environment's
    episodes run in CPU worker processes."""
    from wmlib.profiles import current_profile, seed_everything

    profile = current_profile(profile)
    cfg = replace(CONFIGS[profile], **overrides)
    run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
    r = Run(cfg, run_dir, verbose=verbose)
    seed_everything(cfg.seed)
    dev = devices.resolve(device)
    r.log(f"World Models, profile {profile}, device {dev}")
    start = time.time()
    collect_rollouts(cfg, r, progress)
    vae, _ = train_vae(cfg, r, progress, device=dev)
    series = encode_dataset(cfg, r, vae, progress)
    m, _ = train_mdnrnn(cfg, r, series, progress, device=dev)
    controllers = {
        "real_zh": train_controller(cfg, r, "real_zh", "real", True, vae=vae, mdnrnn=m,
                                    progress=progress),
        "real_z": train_controller(cfg, r, "real_z", "real", False, cfg.zonly_generations,
                                   vae=vae, mdnrnn=m, progress=progress),
        "dream_zh": train_controller(cfg, r, "dream_zh", "dream", True, vae=vae, mdnrnn=m,
                                     progress=progress),
    }
    evals = {name: evaluate_controller(cfg, r, name, c["params"], c["use_hidden"], vae=vae,
                                       mdnrnn=m, progress=progress)
             for name, c in controllers.items()}
    evals["random"] = evaluate_controller(cfg, r, "random", None, progress=progress, vae=vae,
                                          mdnrnn=m)
    summary = summarize(cfg, r, evals, controllers)
    if record and profile != "smoke":
        record_results(summary, profile, r, time.time() - start)
    return summary


def summarize(cfg: WorldModelsConfig, run: Run, evals: dict, controllers: dict) -> dict:
    return {"env": cfg.env_id, "eval_episodes": cfg.eval_episodes,
            **{f"{k}_mean": v["mean"] for k, v in evals.items()},
            **{f"{k}_std": v["std"] for k, v in evals.items()},
            "returns": {k: v["returns"] for k, v in evals.items()},
            "generations": {k: c["es"].generations for k, c in controllers.items()},
            "evaluations": {k: c["es"].evaluations for k, c in controllers.items()},
            "stage_seconds": run.timings,
            "config": {k: v for k, v in asdict(cfg).items()}}


def record_results(summary: dict, profile: str, run: Run, wall_time_s: float | None = None,
                   name: str | None = None) -> Path:
    """Write ``results/ch02_world_models_<profile>.json`` with the run's log. The wall time
    defaults to the sum of the run's stage times (over every session that resumed it)."""
    from wmlib import results

    if wall_time_s is None:
        wall_time_s = sum(run.timings.values())

    log = (run.dir / "log.txt").read_text() if (run.dir / "log.txt").exists() else ""
    return results.record(
        name or f"ch02_world_models_{profile}", summary, profile=profile, seed=run.cfg.seed,
        wall_time_s=wall_time_s, log=log,
        notes="Ha & Schmidhuber (2018) report 906 +- 21 (z and h) and 632 +- 251 (z only) over "
              "100 tracks with 10,000 rollouts, population 64, 16 rollouts per candidate and "
              "about 1800 generations: the paper's numbers, cited, not ours.")
