"""Chapter 1's agents: model-predictive control with the true simulator or a learned model.

MPC (J. Vitay, "Deep Reinforcement Learning" lecture, chapter "Planning with learned world
models", TU Chemnitz): at every step, plan an action sequence a_{t:t+H} with the model, take the
first action a_t in the real environment, observe s_{t+1}, and plan again from there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from wmlib import devices
from wmlib.models.mlp_dynamics import MLPDynamics
from wmlib.planners import cem_plan, random_shooting
from wmlib.replay import Replay
from wmlib.training import History, scalars, train_loop


@dataclass(frozen=True)
class MPCConfig:
    env_id: str = "dmc:cartpole-swingup"
    # CEM (PlaNet: H=12, J=1000, K=100, I=10) and random shooting (J sequences).
    horizon: int = 12
    candidates: int = 1000
    top_k: int = 100
    iterations: int = 10
    shooting_candidates: int = 10000
    eval_episodes: int = 5
    max_steps: int | None = None          # cut episodes short (smoke profile only)
    # Sweeps for the chapter's plots (one episode per point).
    sweep_horizons: tuple[int, ...] = (1, 2, 4, 8, 12, 16)
    sweep_candidates: tuple[int, ...] = (10, 100, 1000, 10000)
    # The learned MLP model.
    seed_episodes: int = 5
    model_iterations: int = 10            # collect-train-plan rounds
    train_steps: int = 500                # gradient steps per round
    batch_size: int = 256
    hidden: int = 200
    lr: float = 1e-3
    model_candidates: int = 500
    model_top_k: int = 50
    model_iterations_cem: int = 5
    error_horizon: int = 30               # steps of the compounding-error plot


CONFIGS = {
    "smoke": MPCConfig(horizon=4, candidates=20, top_k=4, iterations=2, shooting_candidates=50,
                       eval_episodes=1, max_steps=6, sweep_horizons=(1, 4),
                       sweep_candidates=(10, 50), seed_episodes=2, model_iterations=1,
                       train_steps=20, batch_size=32, hidden=32, model_candidates=20,
                       model_top_k=4, model_iterations_cem=2, error_horizon=5),
    "quick": MPCConfig(candidates=200, top_k=20, iterations=5, shooting_candidates=1000,
                       eval_episodes=2, sweep_horizons=(1, 4, 8, 12),
                       sweep_candidates=(10, 100, 1000), seed_episodes=5, model_iterations=4,
                       train_steps=400),
    # The true simulator runs on the CPU whatever the device (a GPU does not speed it up), so
    # the one-hour profile is quick's planner with the learned model trained longer.
    "gpu": MPCConfig(candidates=200, top_k=20, iterations=5, shooting_candidates=1000,
                     eval_episodes=2, sweep_horizons=(1, 4, 8, 12),
                     sweep_candidates=(10, 100, 1000), seed_episodes=5, model_iterations=8,
                     train_steps=1000),
    "full": MPCConfig(),
}


def cem_policy(objective_from_obs, cfg: MPCConfig, action_dim: int, generator=None,
               device=None, execute: int = 1, **overrides):
    """obs -> a_t: plan with CEM through ``objective_from_obs(obs)`` and return mu_t.

    The candidates are drawn on ``device`` (the objective's; the CPU by default). ``execute``
    = k runs the first k actions of each plan before planning again: k = 1 is MPC, k = H
    executes whole plans open-loop (what replanning buys is the difference). The policy's
    ``reset()`` drops what is left of a plan (`evaluate` calls it before every episode)."""
    kw = dict(horizon=cfg.horizon, candidates=cfg.candidates, top_k=cfg.top_k,
              iterations=cfg.iterations) | overrides
    if not 1 <= execute <= kw["horizon"]:
        raise ValueError(f"execute must be between 1 and the horizon {kw['horizon']}, "
                         f"got {execute}")
    planned: list[np.ndarray] = []  # the actions of the current plan still to execute

    def act(obs):
        if execute == 1:  # MPC: only mu_t is needed
            return cem_plan(objective_from_obs(obs), action_dim=action_dim,
                            generator=generator, device=device, **kw).cpu().numpy()
        if not planned:
            trace: list = []
            cem_plan(objective_from_obs(obs), action_dim=action_dim, generator=generator,
                     device=device, trace=trace, **kw)
            planned.extend(trace[-1]["mean"][:execute].numpy())  # mu_t, ..., mu_t+k-1
        return planned.pop(0)

    act.reset = planned.clear
    return act


def shooting_policy(objective_from_obs, cfg: MPCConfig, action_dim: int, generator=None,
                    device=None, **overrides):
    """obs -> a_t: the first action of the best of J uniformly random sequences."""
    kw = dict(horizon=cfg.horizon, candidates=cfg.shooting_candidates) | overrides

    def act(obs):
        return random_shooting(objective_from_obs(obs), action_dim=action_dim,
                               generator=generator, device=device, **kw).cpu().numpy()
    return act


def transitions(batch: dict[str, np.ndarray], device=None):
    """Replay chunks of length 2 -> (s_t, a_t, s_{t+1}, r_{t+1}) tensors on ``device``."""
    dev = devices.resolve(device)
    obs = devices.to_device(batch["obs"], dev, torch.float32)
    action = devices.to_device(batch["action"], dev, torch.float32)
    reward = devices.to_device(batch["reward"], dev, torch.float32)
    return obs[:, 0], action[:, 1], obs[:, 1], reward[:, 1]


class LearnedModelAgent:
    """The MPC loop with a learned model (Vitay's lecture, "Planning with learned world
    models"): train M on D, plan with CEM, add data. Model and planner run on ``device``
    (default: the session's)."""

    def __init__(self, cfg: MPCConfig, obs_dim: int, action_dim: int, seed: int = 0,
                 device=None):
        self.cfg = cfg
        self.device = devices.resolve(device)
        self.model = MLPDynamics(obs_dim, action_dim, cfg.hidden).to(self.device)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.replay = Replay(seed=seed)
        self.history = History()
        self.updates = 0

    def train(self, steps: int, progress: bool = True) -> History:
        """``steps`` gradient steps on transitions sampled from the replay."""
        obs, _, next_obs, _ = transitions(self.replay.sample(4096, 2), self.device)
        self.model.fit_normalizer(obs, next_obs)

        def update(step):
            batch = transitions(self.replay.sample(self.cfg.batch_size, 2), self.device)
            loss = self.model.loss(*batch)
            self.optim.zero_grad()
            loss["loss"].backward()
            self.optim.step()
            return scalars(loss)

        config = dataclasses.asdict(self.cfg)
        self.history = train_loop(update, self.updates + steps, config=config,
                                  modules={"model": self.model, "optim": self.optim},
                                  history=self.history, start=self.updates,
                                  desc="model", progress=progress)
        self.updates += steps
        return self.history

    def policy(self, generator=None, execute: int = 1):
        """obs -> a_t by CEM through the learned model (``generator`` on the agent's device);
        ``execute`` actions of each plan before replanning (`cem_policy`)."""
        cfg = self.cfg
        return cem_policy(lambda obs: lambda a: self.model.returns(
                              devices.to_device(obs, self.device, torch.float32), a),
                          cfg, self.model.action_dim, generator, device=self.device,
                          execute=execute, candidates=cfg.model_candidates,
                          top_k=cfg.model_top_k, iterations=cfg.model_iterations_cem)


def evaluate(env, act, episodes: int, seed: int = 0, max_steps: int | None = None,
             desc: str = "eval", log=print, progress: bool = True) -> list[float]:
    """Returns of ``episodes`` episodes with seeds ``seed, seed+1, ...``; ``log`` gets one line
    per episode (``None``: silent); ``progress=False`` shows no progress bars (a saved
    notebook then holds only text)."""
    from wmlib.progress import tqdm
    from wmlib.rollout import run_episode

    returns = []
    for i in tqdm(range(episodes), desc=desc, leave=False, disable=not progress):
        if hasattr(act, "reset"):
            act.reset()
        _, info = run_episode(env, act, seed=seed + i, max_steps=max_steps,
                              progress=desc if progress else False)
        returns.append(info["return"])
        if log is not None:
            log(f"{desc} episode {i} (seed {seed + i}): return {info['return']:.1f}, "
                f"{info['steps']} steps, {info['seconds']:.1f} s")
    return returns


def true_sim_policy(env, planner: str, cfg: MPCConfig, seed: int = 0, **overrides):
    """MPC with the true simulator: ``planner`` is ``"cem"`` or ``"shooting"``."""
    from wmlib.truesim import TrueSimulator

    sim = TrueSimulator(env)
    make = {"cem": cem_policy, "shooting": shooting_policy}[planner]
    gen = devices.generator("cpu", seed)  # the simulator's candidates live on the CPU
    return make(lambda obs: sim.returns, cfg, env.action_space.shape[0], gen, **overrides)


def evaluate_true_sim(planner: str = "cem", profile: str | None = None, seed: int = 0,
                      episodes: int | None = None, name: str | None = None,
                      record: bool = True, progress: bool = True) -> dict:
    """Evaluate MPC with the true simulator and (optionally, not in the smoke profile) write
    ``results/<name>.json``; returns the summary (returns, mean, std, the planner's knobs)."""
    import time

    from wmlib import envs, results
    from wmlib.paths import show
    from wmlib.profiles import current_profile, seed_everything

    profile = current_profile(profile)
    cfg = CONFIGS[profile]
    episodes = episodes or cfg.eval_episodes
    seed_everything(seed)
    env = envs.make(cfg.env_id, pixels=False)
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line)

    knobs = (dict(horizon=cfg.horizon, candidates=cfg.candidates, top_k=cfg.top_k,
                  iterations=cfg.iterations) if planner == "cem"
             else dict(horizon=cfg.horizon, candidates=cfg.shooting_candidates))
    log(f"{planner} + true simulator on {cfg.env_id}, profile {profile}, seed {seed}: {knobs}")
    start = time.time()
    rets = evaluate(env, true_sim_policy(env, planner, cfg, seed), episodes, seed,
                    cfg.max_steps, desc=planner, log=log, progress=progress)
    wall = time.time() - start
    summary = {"env": cfg.env_id, "planner": planner, **knobs, "episodes": episodes,
               "returns": [round(r, 1) for r in rets], "mean": round(float(np.mean(rets)), 1),
               "std": round(float(np.std(rets)), 1), "action_repeat": env.unwrapped.action_repeat}
    log(f"mean return {summary['mean']} +- {summary['std']} over {episodes} episodes, "
        f"{wall:.0f} s")
    if record and profile != "smoke":
        path = results.record(name or f"ch01_{planner}_truesim_{profile}", summary,
                              profile=profile, seed=seed, wall_time_s=wall, log="\n".join(lines),
                              notes="PlaNet Table 1 reports 850 for CEM + true simulator "
                                    "(Hafner et al. 2019), cited, not ours.",
                              device="cpu")  # the simulator runs on the CPU
        print(f"recorded in {show(path)}")
    return summary
