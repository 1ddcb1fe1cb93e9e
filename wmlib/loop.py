"""The online training loop that PlaNet, Dreamer, ColloDreamer and BIRD share: PlaNet's
Algorithm 1 (Hafner et al. 2019; Dreamer's Algorithm 1 and Wan and Chen's keep its schedule).

1. S *seed episodes* with random actions fill the replay;
2. then each *round*: C = ``collect_interval`` gradient updates on replay batches, one episode
   collected with the agent's policy and exploration noise, and every ``eval_every`` rounds an
   evaluation without noise.

`OnlineAgent` holds what every agent needs around its networks: the environment, the replay,
the history of metrics, the run directory (the replay on disk, ``checkpoint.pt`` after each
round, ``log.txt``) and `OnlineAgent.train`, the loop itself, which resumes where an
interrupted run stopped. An agent subclasses it and says what is its own: `OnlineAgent.build`
(networks and optimisers), `OnlineAgent.modules` (what a checkpoint holds),
`OnlineAgent.update` (one gradient step) and `OnlineAgent.make_policy` (how it acts);
`OnlineAgent.eval_metrics` adds measurements to an evaluation (Dreamer's imagination gap).

Around a run: `train_agent` builds an agent in a profile and trains it (each agent's ``train``
is one call of it), `final_evaluation` is the book's headline number, `curve` the learning
curve, `record_run` writes both to ``results/`` with their provenance and `run_log` is the
whole log.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from wmlib import devices
from wmlib.nets import OBS_SHAPE
from wmlib.training import History


class OnlineAgent:
    """An agent learning online by Algorithm 1: its environment, replay and history, and the
    loop around them (`train`); a subclass gives the networks, the update and the policy.

    ``cfg`` is the agent's configuration (a dataclass with at least `PlaNetConfig`'s fields of
    the environment, the replay and Algorithm 1). With a ``run_dir`` the replay is kept on disk
    in ``run_dir/replay`` and the networks, optimisers and history in ``run_dir/checkpoint.pt``:
    `train` resumes where an interrupted run stopped, and refuses a run directory trained under
    another configuration.
    """

    NAME = "agent"      # the agent's name in progress bars and logs
    PUBLISHED = ""      # the published numbers a record cites beside ours

    def __init__(self, cfg, env=None, run_dir: str | Path | None = None, seed: int = 0,
                 device=None):
        from wmlib import envs
        from wmlib.replay import Replay

        self.cfg, self.seed = cfg, seed
        self.env = env if env is not None else envs.make(cfg.env_id, pixels=cfg.pixels, size=64,
                                                         action_repeat=cfg.action_repeat)
        shape = tuple(self.env.observation_space.shape)
        if cfg.pixels and shape != OBS_SHAPE:
            raise ValueError(f"{self.NAME} needs 64x64 pixel observations {OBS_SHAPE}, but "
                             f"{cfg.env_id} gives {shape}; use envs.make(..., pixels=True, "
                             "size=64), or pixels=False in the config for the state.")
        if not cfg.pixels and len(shape) != 1:
            raise ValueError(f"With pixels=False the agent needs flat state observations, but "
                             f"the environment gives {shape}; use envs.make(..., pixels=False).")
        self.device = devices.resolve(device)  # None: the session's (wmlib.setup's) device
        torch.manual_seed(seed)
        self.build(self.env.action_space.shape[0], shape)
        self.run_dir = Path(run_dir) if run_dir else None
        replay_dir = self.run_dir / "replay" if self.run_dir else None
        if replay_dir is not None and replay_dir.is_dir():
            self.replay = Replay.load(replay_dir, cfg.replay_capacity, seed=seed)
        else:
            self.replay = Replay(cfg.replay_capacity, seed=seed)
        self.history = History()
        self.rounds = 0  # rounds of Algorithm 1 done (in memory; a run_dir's checkpoint knows)
        self.log_lines: list[str] = []
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(
                json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")

    # -- what each agent gives ---------------------------------------------------------------
    def build(self, action_size: int, obs_shape: tuple[int, ...]) -> None:
        """Make the networks and optimisers on ``self.device``; ``self.model`` must be the
        world model (the loop puts it in evaluation mode while the agent acts)."""
        raise NotImplementedError

    def modules(self) -> dict:
        """Everything a checkpoint holds: name -> network or optimiser."""
        raise NotImplementedError

    def update(self) -> dict:
        """One gradient step on a replay batch; returns its metrics as floats."""
        raise NotImplementedError

    def make_policy(self, noise: float, seed: int) -> Callable:
        """The policy that acts in the environment, with exploration ``noise`` (0: none)."""
        raise NotImplementedError

    def eval_metrics(self) -> dict:
        """More measurements on the episodes of the last evaluation (``self.eval_episodes``),
        logged with ``eval_return``; none by default (Dreamer adds the imagination gap)."""
        return {}

    # -- bookkeeping ---------------------------------------------------------------------
    def log(self, line: str, echo: bool = True) -> None:
        """A line of the run's log: kept, appended to ``run_dir/log.txt``, printed."""
        self.log_lines.append(line)
        if self.run_dir is not None:
            with open(self.run_dir / "log.txt", "a") as f:
                f.write(line + "\n")
        if echo:
            print(line, flush=True)

    def save_replay(self) -> None:
        """Write the replay's new episodes to ``run_dir/replay``."""
        if self.run_dir is not None:
            self.replay.save(self.run_dir / "replay")

    def load(self, path: str | Path | None = None) -> dict:
        """Load a checkpoint (default ``run_dir/checkpoint.pt``); refuses other configs."""
        from wmlib.training import load_checkpoint

        path = Path(path) if path else self.run_dir / "checkpoint.pt"
        return load_checkpoint(path, self.cfg, self.modules(), self.history,
                               map_location=self.device)

    def save(self, path: str | Path, step: int) -> None:
        """A checkpoint of `modules` and the history after ``step`` rounds."""
        from wmlib.training import save_checkpoint

        save_checkpoint(path, self.cfg, step, self.modules(), self.history)

    # -- the pieces of Algorithm 1 ---------------------------------------------------------
    def collect(self, policy: Callable | None, seed: int):
        """One episode (random actions when ``policy`` is None) added to the replay; ``seed``
        seeds the environment's reset and the random actions."""
        from wmlib.rollout import random_policy, run_episode

        act = random_policy(self.env, seed=seed) if policy is None else policy
        if hasattr(act, "reset"):
            act.reset()
        episode, info = run_episode(self.env, act, seed=seed, max_steps=self.cfg.max_steps)
        # The discount target of DreamerV2's discount predictor: 0 after a terminal step.
        episode["discount"] = np.ones_like(episode["reward"])
        if info["terminated"]:
            episode["discount"][-1] = 0.0
        self.replay.add(episode)
        self.save_replay()
        return episode, info

    def evaluate(self, episodes: int, seed: int) -> list[float]:
        """Returns of ``episodes`` episodes of the policy without exploration noise (not
        stored in the replay; kept in ``self.eval_episodes`` for `eval_metrics`)."""
        from wmlib.rollout import run_episode

        self.model.eval()
        policy = self.make_policy(0.0, seed)
        rets, self.eval_episodes = [], []
        for i in range(episodes):
            policy.reset()
            episode, info = run_episode(self.env, policy, seed=seed + i,
                                        max_steps=self.cfg.max_steps)
            rets.append(info["return"])
            self.eval_episodes.append(episode)
        self.model.train()
        return rets

    # -- Algorithm 1 -----------------------------------------------------------------------
    def train(self, episodes: int | None = None, progress: bool = True,
              echo: bool = True) -> History:
        """PlaNet's Algorithm 1: S random seed episodes, then ``episodes`` rounds of
        C = collect_interval updates followed by one episode collected with the agent's policy
        and exploration noise; every ``eval_every`` rounds an evaluation without noise.

        One round is one step of `wmlib.training.train_loop`: a checkpoint is written after each
        round and the run resumes from it (Ctrl-C stops it cleanly). The history holds, per
        round, the mean losses of its updates, the training episode's return, ``env_steps``
        (environment steps including the action repeat), ``wall_s`` and, on evaluation rounds,
        ``eval_return``.
        """
        from wmlib.training import train_loop

        cfg = self.cfg
        total = cfg.episodes if episodes is None else episodes
        repeat = getattr(self.env.unwrapped, "action_repeat", 1)
        # Resume: the checkpoint (if any) is read by train_loop; the replay was loaded from disk.
        ckpt = self.run_dir / "checkpoint.pt" if self.run_dir else None
        if ckpt is not None and ckpt.exists():
            self.load(ckpt)
        wall0 = self.history.last("wall_s", 0.0)
        start_time = time.time()
        if len(self.replay) < cfg.seed_episodes:
            # Algorithm 1, line 1: S seed episodes with random actions.
            for i in range(len(self.replay), cfg.seed_episodes):
                _, info = self.collect(None, seed=self.seed * 100_000 + i)
                self.log(f"seed episode {i}: return {info['return']:.1f}", echo)

        seed_steps = (self.replay.num_steps - len(self.replay)) * repeat

        def round_(step: int) -> dict:
            t0 = time.time()
            sums: dict[str, float] = {}
            for _ in range(cfg.collect_interval):
                for k, v in self.update().items():
                    sums[k] = sums.get(k, 0.0) + v
            metrics = {k: v / max(cfg.collect_interval, 1) for k, v in sums.items()}
            t1 = time.time()
            self.model.eval()
            policy = self.make_policy(cfg.exploration_noise, self.seed * 100_000 + 1000 + step)
            _, info = self.collect(policy, seed=self.seed * 100_000 + 1000 + step)
            self.model.train()
            t2 = time.time()
            metrics["return"] = info["return"]
            # Environment steps so far, the action repeat included: the previous round's count
            # plus this episode's (a FIFO replay forgets old episodes, so it cannot be counted
            # from the replay); the first round starts from the seed episodes in the replay
            # before this episode was added (each stores one more frame than it has steps).
            previous = self.history.last("env_steps", math.nan)
            if math.isnan(previous):
                previous = seed_steps
            metrics["env_steps"] = previous + info["steps"] * repeat
            metrics["train_s"], metrics["collect_s"] = t1 - t0, t2 - t1
            line = (f"episode {step + 1}/{total}: return {info['return']:.1f}, "
                    f"loss {metrics.get('loss', math.nan):.1f} (recon "
                    f"{metrics.get('recon', math.nan):.1f}, reward "
                    f"{metrics.get('reward_loss', math.nan):.3f}, kl "
                    f"{metrics.get('kl', math.nan):.2f}), train {t1 - t0:.1f} s, collect "
                    f"{t2 - t1:.1f} s")
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                rets = self.evaluate(cfg.eval_episodes, seed=self.seed * 100_000 + 50_000 + step)
                metrics["eval_return"] = float(np.mean(rets))
                metrics.update(self.eval_metrics())
                metrics["eval_s"] = time.time() - t2
                line += f"; eval return {metrics['eval_return']:.1f} ({metrics['eval_s']:.1f} s)"
            metrics["wall_s"] = wall0 + time.time() - start_time
            line += f"; wall {metrics['wall_s']:.0f} s"
            self.log(line, echo)
            return metrics

        # With a run_dir, train_loop resumes from its checkpoint; in memory, from self.rounds.
        self.history = train_loop(round_, total, config=cfg, modules=self.modules(),
                                  history=self.history, run_dir=self.run_dir, save_every=1,
                                  desc=f"{self.NAME} episodes", progress=progress,
                                  start=self.rounds,
                                  budget_s=cfg.budget_s)
        self.rounds = max(self.rounds, int(max(self.history["return"][0], default=-1)) + 1)
        return self.history


def train_agent(agent_cls, configs: dict, profile: str | None = None,
                run_dir: str | Path | None = None, seed: int = 0, env_id: str | None = None,
                episodes: int | None = None, progress: bool = True, device=None,
                prepare=None, **overrides):
    """Build ``agent_cls`` with its profile's config from ``configs`` (plus ``overrides``),
    log the set-up and run its Algorithm 1 (each agent's ``train``, e.g.
    `wmlib.agents.planet.train`, is this call with its own table of configurations).
    ``prepare(agent)``, if given, runs before training (ColloDreamer starts from chapter 4's
    world model with it)."""
    from wmlib.profiles import current_profile, seed_everything

    profile = current_profile(profile)
    cfg = configs[profile]
    if env_id:
        overrides["env_id"] = env_id
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    seed_everything(seed)
    agent = agent_cls(cfg, run_dir=run_dir, seed=seed, device=device)
    agent.profile = profile
    agent.log(f"{agent_cls.__name__} on {cfg.env_id}, profile {profile}, seed {seed}, device "
              f"{agent.device}, torch threads {torch.get_num_threads()}: {cfg}")
    if prepare is not None:
        prepare(agent)
    agent.train(episodes, progress=progress)
    return agent


def final_evaluation(agent: OnlineAgent, episodes: int = 10, seed: int = 900_000) -> dict:
    """The book's headline number: the trained policy without exploration noise over
    ``episodes`` fresh episodes (seeds ``seed .. seed + episodes - 1``), and random actions on
    the same seeds."""
    from wmlib.rollout import random_policy, run_episode

    final = agent.evaluate(episodes, seed=seed)
    env = agent.env
    rand = [run_episode(env, random_policy(env, seed=seed + i), seed=seed + i,
                        max_steps=agent.cfg.max_steps)[1]["return"] for i in range(episodes)]
    return {"final_returns": [round(r, 1) for r in final],
            "random_returns": [round(r, 1) for r in rand], "final_seeds": [seed, seed + episodes]}


def curve(history: History) -> dict:
    """The learning curve of a run: per round the env steps, wall time and returns."""
    steps = dict(zip(*history["env_steps"]))
    wall = dict(zip(*history["wall_s"]))
    train_ = [(steps[i], wall[i], r) for i, r in zip(*history["return"])]
    evals = [(steps[i], wall[i], r) for i, r in zip(*history["eval_return"])]
    return {"train": [[int(a), round(b, 1), round(c, 1)] for a, b, c in train_],
            "eval": [[int(a), round(b, 1), round(c, 1)] for a, b, c in evals]}


def record_run(agent: OnlineAgent, name: str, notes: str = "", extra: dict | None = None) -> Path:
    """Write the run's learning curve and numbers to ``results/<name>.json`` with the log
    (``extra``: more measured values, e.g. a final evaluation over several episodes)."""
    from wmlib import results

    h = agent.history
    c = curve(h)
    wall = h.last("wall_s", 0.0)
    in_30 = [r for _, w, r in c["eval"] if w <= 1800]
    values = {"env": agent.cfg.env_id, "kind": agent.cfg.kind,
              "config": dataclasses.asdict(agent.cfg), "episodes": len(c["train"]),
              "seed_episodes": agent.cfg.seed_episodes, "env_steps": int(h.last("env_steps", 0)),
              "curve_columns": ["env_steps", "wall_s", "return"],
              "train_curve": c["train"], "eval_curve": c["eval"],
              "best_eval_return": max((r for *_, r in c["eval"]), default=None),
              "best_eval_return_within_30_min": max(in_30, default=None),
              "final_eval_return": c["eval"][-1][2] if c["eval"] else None,
              "mean_update_s": round(float(np.mean(h["train_s"][1])) / agent.cfg.collect_interval,
                                     3) if "train_s" in h else None,
              "mean_collect_s_per_episode": round(float(np.mean(h["collect_s"][1])), 1)
              if "collect_s" in h else None,
              "device": str(agent.device), "torch_threads": torch.get_num_threads(),
              **(extra or {})}
    if "gap_abs" in h:  # Dreamer's imagination gap at each evaluation (chapter 6)
        steps = dict(zip(*h["env_steps"]))
        cols = [dict(zip(*h[k])) for k in ("gap_imagined", "gap_real", "gap_abs")]
        values["gap_columns"] = ["env_steps", "imagined", "real", "abs_gap"]
        values["gap_curve"] = [[int(steps[i])] + [round(c[i], 2) for c in cols]
                               for i in sorted(cols[2])]
    notes = notes or agent.PUBLISHED
    log = run_log(agent)
    return results.record(name, values, profile=getattr(agent, "profile", "unknown"),
                          seed=agent.seed, wall_time_s=wall, log=log, notes=notes,
                          device=str(agent.device))


def run_log(agent: OnlineAgent) -> str:
    """The whole log of a run: the run directory's log.txt (all sessions) or this session's."""
    if agent.run_dir is not None and (agent.run_dir / "log.txt").exists():
        return (agent.run_dir / "log.txt").read_text()
    return "\n".join(agent.log_lines)
