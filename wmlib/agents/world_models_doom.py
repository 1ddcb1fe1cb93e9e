"""Chapter 2, part two: learning inside the dream, on VizDoom's Take Cover.

World Models (Ha & Schmidhuber 2018, arXiv:1803.10122, section "VizDoom experiment") trains its
controller entirely inside M's dream and then drives the real game with it. This module is
chapter 2's pipeline (:mod:`wmlib.agents.world_models`) with the paper's Doom settings
(:data:`DOOM`, after the original code, WorldModelsExperiments ``doomrnn/``):

1. random rollouts in the real game, an action in [-1, 1] held for 1-10 steps
   (:class:`~wmlib.agents.world_models.RepeatedRandomPolicy`);
2. V, the VAE, on the frames; 3. every frame encoded;
4. M on windows that run from one rollout into the next, its LSTM reset where an episode
   restarts and deaths weighed x10 in its done loss (`MDNRNN.loss`);
5. C evolved with CMA-ES only inside M's dream, one controller per temperature tau
   (:data:`TEMPERATURES`): the dream pays 1 per step survived and ends when M predicts death
   (`wmlib.dream.dream_returns` with ``reward="survival"``);
6. every controller and the random policy in the real game, on the same seeds, and every
   controller's score in its own dream.

:func:`run` chains them, resuming from ``runs/<name>``, and writes ``results/<name>.json``,
where the name is :func:`record_name`'s: ``ch02_doom_<profile>``, with ``_seed<N>`` for a seed
other than 0.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from wmlib import devices
from wmlib.agents import world_models as wm
from wmlib.agents.world_models import WorldModelsConfig

# The paper's Doom model (section "VizDoom experiment" and the original code): z of 64, an LSTM
# of 512 with 5 mixtures, a done ("restart") head with deaths weighed x10, the survival dream,
# episodes capped at 2100 steps (the environment's cap).
DOOM = dict(env_id="doom:TakeCover", action_low=(-1.0,), action_high=(1.0,), brake_clip=False,
            random_policy="repeat", done_weight=10.0, rnn_streams=True, rnn_stateful=True,
            dream_reward="survival",
            latent_dim=64, hidden=512, mixtures=5, patience=None, rollout_steps=2100,
            train_max_steps=None, dream_steps=2100, dream_temperature=1.15)

CONFIGS = {
    "smoke": replace(wm.CONFIGS["smoke"], **{**DOOM, "latent_dim": 8, "hidden": 16,
                                            "mixtures": 2, "rollout_steps": 30,
                                            "dream_steps": 10}),
    # 2 CPU cores, about 45 minutes: a tenth of the paper's rollouts (the game runs at about
    # 1,800 steps/s here, so 1,000 random rollouts take 3 minutes) and fewer updates, an LSTM
    # of 256 (the paper's 512 costs four times as much per step here), dreams cut at 1000
    # steps. Random rollouts average about 330 steps (200 of them held 65,858 frames).
    "quick": WorldModelsConfig(
        **{**DOOM, "hidden": 256, "dream_steps": 1000}, workers=2, torch_threads=1,
        rollouts=1000, vae_batch=64, vae_lr=1e-3, vae_epochs=0.3, rnn_seq_len=100,
        rnn_batch=32, rnn_steps=1500, dream_popsize=32, dream_rollouts=8,
        dream_generations=30, eval_episodes=20, video_steps=400),
    # One Colab session: V and M on the GPU, the paper's LSTM, population and rollouts.
    "gpu": WorldModelsConfig(
        **DOOM, workers=2, rollouts=1000, vae_batch=100, vae_lr=1e-3, vae_epochs=3,
        rnn_seq_len=200, rnn_batch=64, rnn_steps=4000, dream_popsize=64, dream_rollouts=16,
        dream_generations=200, eval_episodes=100, video_steps=400),
    # The original: 10,000 rollouts, M on windows of 500 steps (batch 100), population 64 with
    # 16 dreams each, 100 real episodes.
    "full": WorldModelsConfig(
        **DOOM, rollouts=10_000, vae_batch=100, vae_epochs=10, rnn_seq_len=499, rnn_batch=100,
        rnn_steps=24_000, dream_popsize=64, dream_rollouts=16, dream_generations=1800,
        eval_episodes=100),
}

# The temperatures of the paper's Table 2 (tau = 1.15 is its best).
TEMPERATURES = {"smoke": (1.0,), "quick": (0.1, 0.5, 1.0, 1.15, 1.3),
                "gpu": (0.1, 0.5, 1.0, 1.15, 1.3), "full": (0.1, 0.5, 1.0, 1.15, 1.3)}

# The paper's Table 2 (Ha & Schmidhuber 2018): tau -> (dream mean, std, real mean, std) over 100
# real episodes; the random policy 210 +- 108; cited, not ours.
PAPER_TABLE = {0.10: (2086, 140, 193, 58), 0.50: (2060, 277, 196, 50),
               1.00: (1145, 690, 868, 511), 1.15: (918, 546, 1092, 556),
               1.30: (732, 269, 753, 139)}
PAPER_RANDOM = (210, 108)
DREAM_SEED = 4_000_000  # seeds of the dreams that score the final controllers


def record_name(profile: str, seed: int = 0) -> str:
    """``ch02_doom_<profile>``, with ``_seed<N>`` for a seed other than 0."""
    return f"ch02_doom_{profile}" + (f"_seed{seed}" if seed else "")


def default_run_dir(profile: str, seed: int = 0) -> Path:
    from wmlib.paths import runs_dir

    return runs_dir(record_name(profile, seed))


def controller_name(tau: float) -> str:
    return f"dream_tau{tau:g}"


@torch.no_grad()
def dream_scores(cfg: WorldModelsConfig, mdnrnn, series: dict, params: np.ndarray | None,
                 temperature: float, episodes: int, seed: int = DREAM_SEED) -> np.ndarray:
    """The steps C(params) survives in ``episodes`` dreams at ``temperature``, each started
    from the code of a real first frame (the same starts and noise for every controller);
    ``params=None``: uniformly random actions, as the random policy of the real game."""
    from wmlib.dream import dream_returns

    dev = mdnrnn.mdn.weight.device
    g = devices.generator(dev, seed)
    z0_all = devices.to_device(series["mu"][series["starts"][:-1]], dev)
    pick = torch.randint(0, len(z0_all), (episodes,), generator=g, device=dev)
    params = None if params is None else np.asarray(params)[None]
    return dream_returns(mdnrnn, params, z0_all[pick], use_hidden=True,
                         temperature=temperature, steps=cfg.dream_steps, generator=g,
                         low=cfg.action_low, high=cfg.action_high, brake_clip=False,
                         reward="survival")[0]


def run(profile: str | None = None, run_dir=None, record: bool = True, progress: bool = True,
        verbose: bool = True, device=None, temperatures=None, **overrides) -> dict:
    """Every stage in order, resuming from ``run_dir``; then each dream-trained controller
    (one per temperature) and the random policy in the real game on ``eval_episodes`` shared
    seeds, and each controller's score in its own dream. Writes ``results/<record_name>.json``
    unless ``record=False`` or smoke."""
    from wmlib.profiles import current_profile, seed_everything

    profile = current_profile(profile)
    cfg = replace(CONFIGS[profile], **overrides)
    temperatures = tuple(TEMPERATURES[profile] if temperatures is None else temperatures)
    r = wm.Run(cfg, Path(run_dir) if run_dir else default_run_dir(profile, cfg.seed),
               verbose=verbose)
    seed_everything(cfg.seed)
    dev = devices.resolve(device)
    r.log(f"World Models on Take Cover, profile {profile}, device {dev}, "
          f"temperatures {temperatures}")
    start = time.time()
    wm.collect_rollouts(cfg, r, progress)
    vae, _ = wm.train_vae(cfg, r, progress, device=dev)
    series = wm.encode_dataset(cfg, r, vae, progress)
    m, _ = wm.train_mdnrnn(cfg, r, series, progress, device=dev)
    controllers, evals, dreams = {}, {}, {}
    for tau in temperatures:
        name = controller_name(tau)
        c = wm.train_controller(cfg, r, name, "dream", True, vae=vae, mdnrnn=m,
                                progress=progress, temperature=tau)
        controllers[name] = c
        scores = dream_scores(cfg, m, series, c["params"], tau, cfg.eval_episodes)
        dreams[name] = {"temperature": tau, "mean": round(float(scores.mean()), 1),
                        "std": round(float(scores.std()), 1),
                        "returns": [round(float(x), 1) for x in scores]}
        evals[name] = wm.evaluate_controller(cfg, r, name, c["params"], True, vae=vae,
                                             mdnrnn=m, progress=progress)
    evals["random"] = wm.evaluate_controller(cfg, r, "random", None, vae=vae, mdnrnn=m,
                                             progress=progress)
    # how long random actions survive in each dream: a dream as deadly as the real game
    # keeps them about as long as the real game does (M's calibration)
    for tau in temperatures:
        scores = dream_scores(cfg, m, series, None, tau, cfg.eval_episodes)
        dreams[f"random_tau{tau:g}"] = {"temperature": tau, "mean": round(float(scores.mean()), 1),
                                        "std": round(float(scores.std()), 1),
                                        "returns": [round(float(x), 1) for x in scores]}
    summary = summarize(cfg, r, evals, dreams, controllers, temperatures)
    if record and profile != "smoke":
        record_results(summary, profile, r, time.time() - start)
    return summary


def summarize(cfg, run, evals: dict, dreams: dict, controllers: dict, temperatures) -> dict:
    table = [{"temperature": tau, "dream_mean": dreams[controller_name(tau)]["mean"],
              "dream_std": dreams[controller_name(tau)]["std"],
              "real_mean": evals[controller_name(tau)]["mean"],
              "real_std": evals[controller_name(tau)]["std"],
              "random_dream_mean": dreams[f"random_tau{tau:g}"]["mean"],
              "random_dream_std": dreams[f"random_tau{tau:g}"]["std"]} for tau in temperatures]
    return {"env": cfg.env_id, "eval_episodes": cfg.eval_episodes, "table": table,
            "random_mean": evals["random"]["mean"], "random_std": evals["random"]["std"],
            "returns": {k: v["returns"] for k, v in evals.items()},
            "dream_returns": {k: v["returns"] for k, v in dreams.items()},
            "generations": {k: c["es"].generations for k, c in controllers.items()},
            "stage_seconds": run.timings, "config": asdict(cfg)}


def record_results(summary: dict, profile: str, run, wall_time_s: float | None = None) -> Path:
    """``results/ch02_doom_<profile>.json`` with the run's log; the wall time defaults to the
    sum of the run's stage times (over every session that resumed it)."""
    from wmlib import results

    if wall_time_s is None:
        wall_time_s = sum(run.timings.values())
    log = (run.dir / "log.txt").read_text() if (run.dir / "log.txt").exists() else ""
    return results.record(
        record_name(profile, run.cfg.seed), summary, profile=profile, seed=run.cfg.seed,
        wall_time_s=wall_time_s, log=log,
        notes="Ha & Schmidhuber (2018), Table 2, over 100 real episodes: tau 0.10 -> 193 +- 58, "
              "0.50 -> 196 +- 50, 1.00 -> 868 +- 511, 1.15 -> 1092 +- 556, 1.30 -> 753 +- 139; "
              "random policy 210 +- 108: the paper's numbers, cited, not ours.")


@torch.no_grad()
def dream_episode(cfg: WorldModelsConfig, mdnrnn, vae, series: dict, params: np.ndarray | None,
                  temperature: float, seed: int = 0, steps: int | None = None) -> dict:
    """One dream of C(params) (``None``: uniformly random actions) at ``temperature``, as
    `wmlib.dream.DreamEnv` plays it: the frames V decodes from the dreamed codes (``(T + 1, 64,
    64, 3)`` uint8), the actions, M's probability of death at each step, and the number of
    steps survived."""
    from wmlib.dream import DreamEnv

    z0 = series["mu"][series["starts"][:-1]]
    dream = DreamEnv(mdnrnn, z0, temperature=temperature, vae=vae,
                     max_steps=steps or cfg.dream_steps, action_low=cfg.action_low,
                     action_high=cfg.action_high, reward="survival")
    c = wm.make_controller(cfg)
    if params is not None:
        c.set_params(params)
    obs, _ = dream.reset(seed=seed)
    dream.action_space.seed(seed)
    frames, actions, p_done = [dream.render()], [], []
    while True:
        z, h = obs[: cfg.latent_dim], obs[cfg.latent_dim :]
        a = (c(z, h) if params is not None else dream.action_space.sample()).astype(np.float32)
        obs, _, terminated, truncated, info = dream.step(a)
        frames.append(dream.render())
        actions.append(a)
        p_done.append(info["p_done"])
        if terminated or truncated:
            break
    return {"frames": np.stack(frames), "action": np.stack(actions), "p_done": np.array(p_done),
            "steps": len(actions), "died": bool(terminated)}


@torch.no_grad()
def real_and_dreamed(cfg: WorldModelsConfig, env, mdnrnn, vae, seed: int, context: int = 1,
                     steps: int = 60, temperature: float = 1.0) -> dict:
    """The real game under Doom's random data policy next to M's dream of the same actions:
    M reads the codes of the first ``context`` real frames, then dreams on from its own
    samples at ``temperature``; V decodes both. Returns the real frames, V's reconstructions,
    the dreamed frames (``(T, 3, 64, 64)`` uint8 each) and M's probability of death per step
    beside the real end of the episode."""
    from wmlib import envs
    from wmlib.dream import sample_mixture

    dev = mdnrnn.mdn.weight.device
    policy = wm.random_data_policy(cfg, np.random.default_rng(seed))
    episode = wm.run_policy(env, policy, seed=seed, max_steps=steps, frames=True)
    obs = devices.to_device(episode["obs"], dev)
    z_real = vae.encode(envs.preprocess(obs)).loc
    actions = devices.to_device(episode["action"][1:].astype(np.float32), dev)
    g = devices.generator(dev, seed)
    state, z, dreamed, p_done = mdnrnn.initial_state(1), z_real[:1], [z_real[:1]], []
    for t in range(len(actions)):
        out, state = mdnrnn.step(z, actions[t : t + 1], state)
        p_done.append(float(torch.sigmoid(out.done[0])))
        z = z_real[t + 1 : t + 2] if t + 1 < context else sample_mixture(out, temperature, g)
        dreamed.append(z)
    decode = lambda codes: envs.postprocess(vae.decode(codes))  # noqa: E731
    return {"real": episode["obs"], "reconstructed": decode(z_real),
            "dreamed": decode(torch.cat(dreamed)), "p_done": np.array(p_done),
            "died": bool(episode["terminated"]), "steps": episode["steps"]}
