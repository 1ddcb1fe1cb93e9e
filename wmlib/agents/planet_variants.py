"""Chapter 3's model experiments: RNN, SSM and RSSM (PlaNet, section 3), with and without latent
overshooting (PlaNet, eq. (7)), trained on the same random episodes and compared by their
open-loop predictions on a held-out episode.

* `ExperimentConfig`, `EXPERIMENTS`: the sizes per profile;
* `VARIANTS`: the six models: a latent-dynamics ``kind`` and the overshooting terms;
* `collect_data`: the random episodes (seeded) every variant trains on, and the test episode;
* `fit`: train only the model on a fixed replay (checkpointed and resumable with ``run_dir``);
* `train_variant`: one variant and seed, loaded when its run directory holds the finished run;
* `open_loop`, `open_loop_errors`: filter a few frames, then predict without observations;
* `mean_frame_error`: the floor a model that knows only the background reaches;
* `run_experiment`: every variant and seed, recorded in ``results/ch03_variants_<profile>.json``
  (``python -m wmlib variants``).

The models are PlaNet's (`wmlib.agents.planet.PlaNet`) with the quick profile's reward weight;
reward overshooting is off except in "rssm + RO", the quick agent's own loss, which the
experiment compares with the plain RSSM on the reward the planner sums.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib.agents.planet import CONFIGS, FAST, PlaNet, PlaNetConfig
from wmlib.training import History, scalars, train_loop


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes of chapter 3's model experiments (the agent's run uses `PlaNetConfig`)."""

    data_episodes: int = 10             # random episodes every variant is trained on
    updates: int = 2000                 # gradient steps per variant
    batch_size: int = 50
    chunk_length: int = 50
    overshooting: int = 8               # D of the ablation (and of the RNN's obs. overshooting)
    rnn_overshooting: int = 3
    context: int = 5                    # frames the model filters before predicting open-loop
    open_loop: int = 15                 # open-loop prediction steps
    starts: int = 8                     # start points averaged in the error-vs-horizon plot
    seeds: int = 3                      # seeds per variant
    max_steps: int | None = None
    speed: dict | None = None           # speed options the models train with (None: the
                                        # agent's), pinned where a record was made with others


EXPERIMENTS = {
    "smoke": ExperimentConfig(data_episodes=2, updates=3, batch_size=2, chunk_length=8,
                              overshooting=3, rnn_overshooting=2, context=2, open_loop=4,
                              starts=2, seeds=1, max_steps=12),
    # quick: enough updates for the posteriors to show the cart and the pole (at 200 updates of
    # 8 x 32 they showed only the background: every model was worse than the mean frame)
    # (the speed options of its recorded run, results/ch03_variants_quick.json: channels-last
    # alone; the quick agent has since taken bf16 autocast and compile, which the 18 models
    # would need retraining to follow)
    "quick": ExperimentConfig(data_episodes=20, updates=1500, batch_size=16, chunk_length=32,
                              overshooting=8, rnn_overshooting=2,
                              speed={k: False for k in FAST} | {"channels_last": True}),
    # the one-hour profile: the paper's batch, fewer updates, so the agent keeps its budget
    "gpu": ExperimentConfig(data_episodes=20, updates=1000),
    "full": ExperimentConfig(),
}

# name -> (latent dynamics kind, overshooting distance, beta of the d-step KLs, reward
# overshooting): a distance of "D" is the experiment's D, "H" the agent's (its planning
# horizon); the RNN's open-loop step is trained by observation overshooting (`PlaNet.loss`).
# "rssm + RO" is the loss of the quick agent: reward overshooting to H, no d-step KLs.
VARIANTS = {"rnn": ("rnn", "rnn", 1.0, False), "ssm": ("ssm", 0, 1.0, False),
            "rssm": ("rssm", 0, 1.0, False), "ssm + LO": ("ssm", "D", 1.0, False),
            "rssm + LO": ("rssm", "D", 1.0, False), "rssm + RO": ("rssm", "H", 0.0, True)}
DATA_SEED, TEST_SEED = 1000, 5000


def collect_data(env, exp: ExperimentConfig):
    """The random episodes every variant trains on (seeds 1000, 1001, ...) and the held-out
    test episode (seed 5000); the same on every machine."""
    from wmlib.replay import Replay
    from wmlib.rollout import random_policy, run_episode

    data = Replay(seed=0)
    for i in range(exp.data_episodes):
        s = DATA_SEED + i
        data.add(run_episode(env, random_policy(env, seed=s), seed=s, max_steps=exp.max_steps)[0])
    test, _ = run_episode(env, random_policy(env, seed=TEST_SEED), seed=TEST_SEED,
                          max_steps=exp.max_steps)
    return data, test


def fit(model: PlaNet, replay, updates: int, batch_size: int, chunk_length: int,
        overshooting: int = 0, beta: float = 1.0, lr: float | None = None, seed: int = 0,
        progress: bool = True, desc: str = "model", run_dir: str | Path | None = None
        ) -> History:
    """Train only the model on a fixed replay: ``updates`` steps of `PlaNet.loss`.

    The batch of step ``k`` is drawn from a generator seeded by ``(seed, k)``, so a run resumed
    from ``run_dir`` (checkpoint every 100 steps) sees the batches it would have seen."""
    cfg = model.cfg
    optim = torch.optim.Adam(model.parameters(), lr=lr or cfg.lr, eps=cfg.adam_eps)

    def update(step):
        replay.rng = np.random.default_rng([seed, step])
        batch = model.prepare(replay.sample(batch_size, chunk_length))
        loss, metrics, _ = model.loss(*batch, overshooting=overshooting, beta=beta)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optim.step()
        return scalars(metrics)

    # ``updates`` is left out: asking a finished run for more updates continues it
    config = {**dataclasses.asdict(cfg), "batch_size": batch_size,
              "chunk_length": chunk_length, "overshooting": overshooting, "beta": beta,
              "seed": seed}
    return train_loop(update, updates, config=config, modules={"model": model, "optim": optim},
                      run_dir=run_dir, desc=desc, progress=progress)


def variant_config(name: str, cfg: PlaNetConfig, exp: ExperimentConfig
                   ) -> tuple[PlaNetConfig, int, float]:
    """The model configuration, overshooting distance and beta of variant ``name``
    (`VARIANTS`); reward overshooting keeps ``cfg``'s weight where the variant has it, and the
    speed options are ``exp.speed`` where the experiment pins them."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}: choose one of {sorted(VARIANTS)}")
    kind, distance, beta, reward_overshooting = VARIANTS[name]
    distance = {"rnn": exp.rnn_overshooting, "D": exp.overshooting,
                "H": cfg.overshooting}.get(distance, distance)
    weight = cfg.overshooting_reward if reward_overshooting else 0.0
    return (dataclasses.replace(model_config(cfg, exp), kind=kind, overshooting_reward=weight),
            distance, beta)


def model_config(cfg: PlaNetConfig, exp: ExperimentConfig) -> PlaNetConfig:
    """``cfg`` with the speed options the experiment pins (``exp.speed``), if any."""
    return dataclasses.replace(cfg, **(exp.speed or {}))


def slug(name: str, seed: int) -> str:
    return f"{name.replace(' + ', '_').lower()}_seed{seed}"


def train_variant(name: str, seed: int, data, action_size: int, cfg: PlaNetConfig,
                  exp: ExperimentConfig, device=None, run_dir: str | Path | None = None,
                  progress: bool = True) -> tuple[PlaNet, History, float]:
    """Train variant ``name`` with ``seed`` (or load it: with ``run_dir``, a finished run is
    loaded and an interrupted one resumes). Returns the model, its history and the training
    seconds (summed over sessions)."""
    model_cfg, distance, beta = variant_config(name, cfg, exp)
    torch.manual_seed(seed)
    model = PlaNet(model_cfg, action_size)
    if device is not None:
        model = model.to(device)
    directory = Path(run_dir) / slug(name, seed) if run_dir is not None else None
    seconds_file = directory / "seconds.txt" if directory else None
    before = float(seconds_file.read_text()) if seconds_file and seconds_file.exists() else 0.0
    start = time.time()
    history = fit(model, data, exp.updates, exp.batch_size, exp.chunk_length,
                  overshooting=distance, beta=beta, seed=seed, progress=progress,
                  desc=f"{name} (seed {seed})", run_dir=directory)
    # the loop's checkpoints sum the seconds of every session; seconds.txt is the older record
    seconds = history.last("wall_s", before + time.time() - start)
    if seconds_file is not None:
        seconds_file.write_text(f"{seconds:.1f}")
    model.eval()
    return model, history, seconds


@torch.no_grad()
def rollout(model: PlaNet, episode: dict, start: int, context: int, horizon: int,
            seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter ``context`` frames from ``start`` with `observe`, then roll the prior forward
    ``horizon`` steps under the recorded actions with `imagine`. Returns the frames the model
    is compared with ``[context + horizon, 1, 3, 64, 64]`` (quantised as the model saw them, at
    the centre of each bin: the expected value of PlaNet's dequantisation noise) and the
    features ``[context + horizon, 1, F]`` (posteriors, then open-loop priors)."""
    torch.manual_seed(seed)
    n = context + horizon
    obs = model.preprocess(episode["obs"][start:start + n], noise=False)[:, None]
    if model.cfg.bits < 8:
        obs = obs + 0.5 / 2 ** model.cfg.bits
    actions = torch.as_tensor(episode["action"][start:start + n], dtype=torch.float32,
                              device=obs.device)[:, None]
    posteriors, _ = model.dynamics.observe(model.embed(obs[:context]), actions[:context])
    imagined = model.dynamics.imagine(actions[context:], posteriors[-1])
    return obs, torch.cat([posteriors.features(), imagined.features()])


def _decoded(model: PlaNet, obs: torch.Tensor, features: torch.Tensor):
    """The frames decoded from ``features`` and their squared pixel error per step."""
    predicted = model.decode(features).clamp(-0.5, 0.5)
    return predicted, ((predicted - obs) ** 2).mean((1, 2, 3, 4)).cpu().numpy()


def _rewards(model: PlaNet, features: torch.Tensor) -> np.ndarray:
    return model.predict_reward(features)[:, 0].float().cpu().numpy()


@torch.no_grad()
def open_loop(model: PlaNet, episode: dict, start: int, context: int, horizon: int,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Filter ``context`` frames from ``start``, then predict ``horizon`` frames open-loop
    (`rollout`). Returns ``(real, predicted, error)``: uint8 frames
    ``[context + horizon, 3, 64, 64]`` (the first ``context`` predicted frames are
    reconstructions from the posterior) and the mean squared error per pixel of every
    predicted frame against the real one."""
    from wmlib.envs import postprocess

    obs, features = rollout(model, episode, start, context, horizon, seed)
    predicted, error = _decoded(model, obs, features)
    return postprocess(obs[:, 0]), postprocess(predicted[:, 0]), error


@torch.no_grad()
def open_loop_rewards(model: PlaNet, episode: dict, start: int, context: int, horizon: int,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The rewards the reward head predicts along the same `rollout` (what latent CEM sums)
    and the real ones, ``[context + horizon]`` each."""
    _, features = rollout(model, episode, start, context, horizon, seed)
    return _rewards(model, features), episode["reward"][start:start + context + horizon].astype(
        np.float32)


def starts(episode: dict, exp: ExperimentConfig) -> np.ndarray:
    """The start points of the open-loop windows, spread evenly over the test episode."""
    n = exp.context + exp.open_loop
    return np.linspace(0, len(episode["obs"]) - n, exp.starts).astype(int)


@torch.no_grad()
def open_loop_errors(model: PlaNet, episode: dict, exp: ExperimentConfig
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per step, averaged over `starts` of the test episode: the squared pixel error of the
    ``context`` posterior reconstructions and the ``open_loop`` predictions (as `open_loop`),
    and the squared error of the predicted rewards (as `open_loop_rewards`), both from one
    `rollout` per start."""
    n = exp.context + exp.open_loop
    pixels, rewards = [], []
    for s in starts(episode, exp):
        obs, features = rollout(model, episode, s, exp.context, exp.open_loop)
        pixels.append(_decoded(model, obs, features)[1])
        rewards.append((_rewards(model, features) - episode["reward"][s:s + n]) ** 2)
    return np.mean(pixels, 0), np.mean(rewards, 0)


def mean_frame_error(data, episode: dict, exp: ExperimentConfig, bits: int = 5) -> float:
    """The error of always predicting the training data's mean frame, on the same windows:
    what a model that learned only the background (and no cart, no pole) would score. The
    frames are quantised to ``bits`` as the models see them (PlaNet: 5)."""
    from wmlib.envs import preprocess

    frames = np.concatenate([e["obs"] for e in data.episodes])
    mean = preprocess(frames, bits=bits).mean(0)
    n = exp.context + exp.open_loop
    windows = np.concatenate([episode["obs"][s:s + n] for s in starts(episode, exp)])
    return float(((preprocess(windows, bits=bits) - mean) ** 2).mean())


def mean_reward_error(data, episode: dict, exp: ExperimentConfig) -> float:
    """The squared error of always predicting the training data's mean reward, on the same
    windows: the floor of a reward head that learned nothing."""
    mean = np.concatenate([e["reward"][1:] for e in data.episodes]).mean()
    n = exp.context + exp.open_loop
    windows = np.concatenate([episode["reward"][s:s + n] for s in starts(episode, exp)])
    return float(((windows - mean) ** 2).mean())


def run_experiment(profile: str | None = None, names=None, seeds=None, device=None,
                   run_dir: str | Path | None = None, record: bool = True,
                   progress: bool = True) -> dict:
    """Train (or load) every variant in ``names`` for every seed, measure their open-loop
    errors and, once every variant and seed of the profile is finished, record them in
    ``results/ch03_variants_<profile>.json`` (``python -m wmlib variants``; the runs live in
    ``runs/ch03_variants_<profile>/<variant>_seed<n>/``). Two processes
    can share the work by asking for different ``names``; the last one to finish records."""
    from wmlib import envs, paths
    from wmlib.devices import choose
    from wmlib.profiles import current_profile

    profile = current_profile(profile)
    cfg, exp = CONFIGS[profile], EXPERIMENTS[profile]
    device = choose(device)
    run_dir = run_dir or paths.runs_dir(f"ch03_variants_{profile}")
    names = list(names or VARIANTS)
    seeds = list(range(exp.seeds)) if seeds is None else list(seeds)
    env = envs.make(cfg.env_id, pixels=True, size=64)
    data, test = collect_data(env, exp)
    out = {}
    for seed in seeds:  # seed-major: every variant of seed 0 first
        for name in names:
            model, history, seconds = train_variant(name, seed, data, env.action_space.shape[0],
                                                    cfg, exp, device, run_dir, progress)
            out[(name, seed)] = summary(model, history, seconds, test, exp)
            path = Path(run_dir) / slug(name, seed) / "summary.json"
            path.write_text(json.dumps(out[(name, seed)]))
    if record and profile != "smoke":
        record_experiment(profile, run_dir, data, test, device)
    return out


def summary(model: PlaNet, history: History, seconds: float, test: dict,
            exp: ExperimentConfig) -> dict:
    """What the record keeps of one trained variant."""
    error, rew = open_loop_errors(model, test, exp)
    return {"posterior_mse": round(float(error[:exp.context].mean()), 6),
            "open_loop_mse": [round(float(e), 6) for e in error[exp.context:]],
            "posterior_reward_se": round(float(rew[:exp.context].mean()), 6),
            "open_loop_reward_se": [round(float(e), 6) for e in rew[exp.context:]],
            "final_recon": round(history.last("recon"), 1),
            "final_kl": round(history.last("kl"), 3), "train_seconds": round(seconds, 1),
            "updates": int(history["recon"][0][-1]) + 1}


def record_experiment(profile: str, run_dir: str | Path, data, test, device=None) -> Path | None:
    """Write ``results/ch03_variants_<profile>.json`` from the finished variants' summaries in
    ``run_dir``; ``None`` (nothing written) while some variant or seed is missing."""
    import platform

    from wmlib import results

    cfg, exp = CONFIGS[profile], EXPERIMENTS[profile]
    found, logs = {}, []
    for name in VARIANTS:
        for seed in range(exp.seeds):
            path = Path(run_dir) / slug(name, seed)
            if not (path / "summary.json").exists():
                return None
            s = json.loads((path / "summary.json").read_text())
            if s["updates"] < exp.updates:
                return None
            found.setdefault(name, []).append(s)
            logs.append(f"{name} seed {seed}: {s}")
    values = {"variants": found, "seeds": list(range(exp.seeds)),
              "mean_frame_mse": round(mean_frame_error(data, test, exp), 6),
              "mean_reward_se": round(mean_reward_error(data, test, exp), 6),
              "experiment": dataclasses.asdict(exp),
              "model": dataclasses.asdict(model_config(cfg, exp)),
              "data": {"episodes": len(data), "frames": data.num_steps,
                       "seeds": [DATA_SEED, DATA_SEED + exp.data_episodes],
                       "test_seed": TEST_SEED}}
    wall = sum(s["train_seconds"] for v in found.values() for s in v)
    return results.record(
        f"ch03_variants_{profile}", values, profile=profile, seed=list(range(exp.seeds)),
        wall_time_s=wall, log="\n".join(logs) + f"\npython {platform.python_version()}",
        notes="RNN, SSM, RSSM and SSM/RSSM with latent overshooting, each trained with "
              f"{exp.seeds} seeds on the same random episodes of cartpole-swingup (pixels); "
              "squared pixel error of the posterior reconstructions and of open-loop "
              "predictions on a held-out episode, averaged over start points; the mean frame "
              "of the training data as the floor of a model that knows only the background; the "
              "same for the rewards predicted along the rollouts (the quick agent's reward "
              "overshooting against the plain RSSM).",
        device=str(device) if device is not None else None)
