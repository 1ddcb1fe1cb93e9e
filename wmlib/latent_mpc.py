"""Every planner of the book on one learned world model (chapter 5): random shooting, CEM,
MPPI, LatCo and ColloDreamer, each acting by model-predictive control from the belief that the
world model's filter keeps.

* `LatentMPC`: the policy (filter the belief with each observation, plan, act) with the time
  each plan took;
* `make_plan_fn`: a planner by name, on a world model with a reward head (and a value for
  ColloDreamer);
* `fit_reward_head`: a new reward head for another task of the same physics (cartpole's sparse
  swing-up shares the dense task's dynamics and observations), trained on the frozen model's
  posteriors;
* `fit_value`: ColloDreamer's value trained on the replay's real latent trajectories (its
  first method, `wmlib.agents.collodreamer.ColloDreamer.replay_value_loss`);
* `compare`: the comparison's episodes, returns and planning times.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.agents.collodreamer import latent_problem, mean_features
from wmlib.agents.planet import PlaNet
from wmlib.models.rssm import State
from wmlib.planners import cem_plan, random_shooting
from wmlib.planners.collocation import LatCoConfig, LatCoPlanner
from wmlib.planners.mppi import mppi_plan

PLANNERS = ("random", "cem", "cem_equal_time", "mppi", "latco", "collodreamer")


@dataclass(frozen=True)
class ComparisonConfig:
    """The planners' settings. Shooting: PlaNet's H = 12, J = 1000, K = 100, I = 10 (MPPI the
    same with TD-MPC's temperature 0.5); ``cem_equal_time`` is CEM with the budget that takes
    about as long per action as LatCo does here. Collocation: `LatCoConfig`."""

    horizon: int = 12
    candidates: int = 1000
    top_k: int = 100
    iterations: int = 10
    equal_time_candidates: int = 300
    equal_time_top_k: int = 30
    temperature: float = 0.5
    latco: LatCoConfig = field(default_factory=lambda: LatCoConfig(
        horizon=12, iterations=20, warm_iterations=5, reward_scale=8.0))
    discount: float = 0.99


# Per task: PlaNet's horizon of 12 decisions for the dense swing-up; LatCo's 30 for the sparse
# one, whose reward may lie beyond 12 decisions (96 control steps at action repeat 8). The
# equal-time CEM's candidates were set so that it plans about as long per action as LatCo
# on a 2-core CPU (measured, see the recorded times).
TASKS = {
    "swingup": ComparisonConfig(equal_time_candidates=450, equal_time_top_k=45),
    "swingup_sparse": ComparisonConfig(
        horizon=30, equal_time_candidates=300, equal_time_top_k=30,
        latco=LatCoConfig(horizon=30, iterations=20, warm_iterations=5, reward_scale=8.0)),
}


def shooting_objective(world: PlaNet, reward: nn.Module, state: State
                       ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``actions [J, H, A] -> returns [J]``: the prior rolled from the belief ``state`` ([1])
    and the rewards of ``reward`` summed (PlaNet's objective, with any reward head)."""
    def objective(actions: torch.Tensor) -> torch.Tensor:
        J = actions.shape[0]
        start = state.map(lambda x: x.expand(J, *x.shape[1:]))
        imagined = world.dynamics.imagine(actions.transpose(0, 1), start)
        return reward(imagined.features()).sum(0)
    return objective


def make_plan_fn(name: str, world: PlaNet, reward: nn.Module, value: nn.Module | None,
                 cfg: ComparisonConfig, generator: torch.Generator | None = None):
    """``plan(state) -> action [A]`` for planner ``name`` (one of `PLANNERS`), plus a
    ``reset`` for the planners that keep a warm start."""
    device, A, H = world._device(), world.action_size, cfg.horizon
    if name not in PLANNERS:
        raise ValueError(f"Unknown planner {name!r}; choose one of {PLANNERS}.")
    if name in ("latco", "collodreamer"):
        if name == "collodreamer" and value is None:
            raise ValueError("ColloDreamer plans with a value network: pass value=.")
        planner = LatCoPlanner(cfg.latco, A, device, generator)
        problem = latent_problem(world, value if name == "collodreamer" else None,
                                 cfg.discount if name == "collodreamer" else 1.0, reward)

        def plan(state: State) -> torch.Tensor:
            return planner(problem, mean_features(state)[0])
        plan.reset = planner.reset
        return plan

    def plan(state: State) -> torch.Tensor:
        objective = shooting_objective(world, reward, state)
        kw = dict(device=device, generator=generator)
        if name == "random":
            return random_shooting(objective, H, A, cfg.candidates, **kw)
        if name == "cem":
            return cem_plan(objective, H, A, cfg.candidates, cfg.top_k, cfg.iterations, **kw)
        if name == "cem_equal_time":
            return cem_plan(objective, H, A, cfg.equal_time_candidates, cfg.equal_time_top_k,
                            cfg.iterations, **kw)
        return mppi_plan(objective, H, A, cfg.candidates, cfg.top_k, cfg.iterations,
                         cfg.temperature, **kw)
    plan.reset = lambda: None
    return plan


class LatentMPC:
    """Filter the belief with each observation (``q(s_t | o_<=t, a_<t)``), plan from it, act;
    ``times`` holds the seconds of each plan."""

    def __init__(self, world: PlaNet, plan_fn):
        self.world, self.plan_fn = world, plan_fn
        self.times: list[float] = []
        self.reset()

    def reset(self) -> None:
        self.state = self.world.dynamics.initial(1)
        self.prev_action = torch.zeros(1, self.world.action_size, device=self.world._device())
        self.plan_fn.reset()

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        world = self.world
        embed = world.embed(world.preprocess(obs, noise=False)[None])
        self.state, _ = world.dynamics.obs_step(self.state, self.prev_action, embed)
        t0 = time.perf_counter()
        action = self.plan_fn(self.state).clamp(-1, 1)
        if action.device.type == "cuda":
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - t0)
        self.prev_action = action[None]
        return action.cpu().numpy().astype(np.float32)


def posteriors_of(world: PlaNet, batch: dict) -> State:
    """The posteriors ``[T, B]`` of a replay batch (no gradient)."""
    with torch.no_grad():
        obs, actions, _ = world.prepare(batch)
        posteriors, _ = world.dynamics.observe(world.embed(obs), actions)
    return posteriors


def fit_reward_head(world: PlaNet, replay, steps: int = 500, batch_size: int = 16,
                    chunk_length: int = 32, lr: float = 1e-3, hidden: int | None = None,
                    progress: bool = True) -> tuple[nn.Module, list[float]]:
    """A fresh reward head ``r(s_t)`` (PlaNet's architecture) fitted by squared error to the
    rewards of ``replay`` on the frozen world model's posterior features. Returns the head and
    its loss per step."""
    from wmlib.nets import mlp
    from wmlib.progress import tqdm

    device = world._device()
    head = mlp(world.dynamics.feature_size, 1, hidden or world.cfg.hidden_size, 2).to(device)
    head_fn = _Squeeze(head)
    optim = torch.optim.Adam(head.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), desc="reward head", disable=not progress, leave=False):
        batch = replay.sample(batch_size, chunk_length)
        features = mean_features(posteriors_of(world, batch))
        target = devices.to_device(batch["reward"], device, torch.float32).transpose(0, 1)
        loss = (head_fn(features) - target).pow(2).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return head_fn, losses


class _Squeeze(nn.Module):
    """A head ``[..., F] -> [...]`` from an MLP with one output."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)


def fit_value(collo, replay, steps: int = 500, reward: nn.Module | None = None,
              batch_size: int = 16, chunk_length: int = 32, progress: bool = True
              ) -> list[float]:
    """Train ``collo.value`` with ColloDreamer's first method (eq. 10's targets along the
    replay's real latent trajectories) under ``reward`` (default: the world model's head).
    Returns the loss per step."""
    from wmlib.progress import tqdm

    optim = torch.optim.Adam(collo.value.parameters(), lr=collo.cfg.value_lr)
    losses = []
    for _ in tqdm(range(steps), desc="value", disable=not progress, leave=False):
        batch = replay.sample(batch_size, chunk_length)
        loss = collo.replay_value_loss(posteriors_of(collo.world, batch), reward)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    return losses


def compare(env, world: PlaNet, reward: nn.Module, value: nn.Module | None, planners,
            seeds, cfg: ComparisonConfig | None = None, max_steps: int | None = None,
            log=print) -> list[dict]:
    """One episode per planner and seed (the environment's and the planner's seed): returns
    and mean planning seconds per action, one row per episode."""
    from wmlib.rollout import run_episode

    cfg = cfg or ComparisonConfig()
    rows = []
    for name in planners:
        for seed in seeds:
            gen = devices.generator(world._device(), seed)
            policy = LatentMPC(world, make_plan_fn(name, world, reward, value, cfg, gen))
            _, info = run_episode(env, policy, seed=seed, max_steps=max_steps,
                                  progress=False)
            row = {"planner": name, "seed": seed, "return": float(info["return"]),
                   "plan_s": float(np.mean(policy.times)), "steps": int(info["steps"])}
            rows.append(row)
            log(f"{name} seed {seed}: return {row['return']:.1f}, "
                f"{1000 * row['plan_s']:.0f} ms per action")
    return rows


def load_world(profile: str, device=None, run_dir=None):
    """Chapter 4's state Dreamer of ``profile`` (its world model is what every planner here
    plans with), loaded from ``runs/dreamer_state_<profile>``; a clear error when missing."""
    from wmlib import paths
    from wmlib.agents import dreamer

    run_dir = paths.runs_dir(f"dreamer_state_{profile}") if run_dir is None else Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        raise FileNotFoundError(
            f"No trained world model in {paths.show(run_dir)}. Train chapter 4's state agent "
            f"first: python -m wmlib train dreamer --state --profile {profile} "
            f"--run-dir {paths.show(run_dir)}")
    agent = dreamer.DreamerAgent(dreamer.STATE_CONFIGS[profile], run_dir=run_dir, seed=0,
                                 device=device)
    agent.load()
    agent.dreamer.eval()
    return agent


def task_reward(agent, task: str, episodes: int = 40, steps: int = 2000, seed: int = 0,
                progress: bool = True):
    """The environment of cartpole task ``task`` and a reward head for it on the world model:
    the model's own head for the task it was trained on; for another task of the same physics
    (``swingup_sparse``), a new head fitted on ``episodes`` episodes of the task played by
    chapter 4's actor (every other one with exploration noise 0.3). Returns
    ``(env, head, replay, head_losses)``."""
    from wmlib import envs
    from wmlib.replay import Replay
    from wmlib.rollout import run_episode

    cfg = agent.cfg
    env_id = f"dmc:cartpole-{task}"
    if env_id == cfg.env_id:
        return agent.env, agent.dreamer.world.predict_reward, agent.replay, []
    env = envs.make(env_id, pixels=False, action_repeat=cfg.action_repeat)
    replay = Replay(10 ** 6, seed=seed)
    for i in range(episodes):
        policy = agent.make_policy(0.3 if i % 2 else 0.0, seed + i)
        episode, _ = run_episode(env, policy, seed=seed * 1000 + i, max_steps=cfg.max_steps)
        replay.add(episode)
    chunk = min(32, min(len(e["reward"]) for e in replay.episodes))
    head, losses = fit_reward_head(agent.dreamer.world, replay, steps, chunk_length=chunk,
                                   progress=progress)
    return env, head, replay, losses


def run_comparison(profile: str, task: str, seeds=(0, 1, 2), planners=PLANNERS,
                   record: str | None = None, device=None, progress: bool = True,
                   value_steps: int = 2000, head_steps: int = 2000, max_steps=None,
                   world_dir=None) -> dict:
    """Chapter 5's planner comparison on chapter 4's world model: for cartpole ``task``, a
    reward head (`task_reward`) and ColloDreamer's value (`fit_value`, the first method), then
    one episode per planner and seed, and random actions on the same seeds. Recorded in
    ``results/<record>.json`` when ``record`` is given. ``world_dir``: the Dreamer run to
    load (default ``runs/dreamer_state_<profile>``)."""
    from wmlib import results
    from wmlib.agents import collodreamer, planet
    from wmlib.rollout import random_policy, run_episode

    start = time.time()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    agent = load_world(profile, device, world_dir)
    world = agent.dreamer.world
    env, head, replay, head_losses = task_reward(agent, task, steps=head_steps,
                                                 progress=progress)
    if head_losses:
        log(f"reward head for {task}: loss {np.mean(head_losses[:10]):.3f} -> "
            f"{np.mean(head_losses[-50:]):.3f} (reward variance "
            f"{np.var(np.concatenate([e['reward'] for e in replay.episodes])):.3f})")
    ccfg = collodreamer.STATE_CONFIGS[profile]
    collo = collodreamer.ColloDreamer(ccfg, world.action_size, world.obs_shape).to(world._device())
    collo.world.load_state_dict(world.state_dict())
    collo.eval()
    chunk = min(32, min(len(e["reward"]) for e in replay.episodes))
    value_losses = fit_value(collo, replay, value_steps, head, chunk_length=chunk,
                             progress=progress)
    log(f"value (first method, {value_steps} steps): loss {np.mean(value_losses[:10]):.1f} -> "
        f"{np.mean(value_losses[-50:]):.1f}")
    cfg = TASKS.get(task, ComparisonConfig())
    if profile == "smoke":  # a few candidates and iterations: the code runs, nothing more
        cfg = dataclasses.replace(cfg, horizon=4, candidates=20, top_k=4, iterations=2,
                                  equal_time_candidates=10, equal_time_top_k=2,
                                  latco=dataclasses.replace(cfg.latco, horizon=4, iterations=3,
                                                            warm_iterations=2))
    max_steps = max_steps if max_steps is not None else agent.cfg.max_steps
    rows = compare(env, world, head, collo.value, planners, seeds, cfg, max_steps, log)
    rand = [run_episode(env, random_policy(env, seed=s), seed=s, max_steps=max_steps)[1]["return"]
            for s in seeds]
    log(f"random actions, same seeds: {np.round(rand, 1).tolist()}")
    values = {"task": task, "env_id": env.spec.id if env.spec else f"dmc:cartpole-{task}",
              "rows": rows, "random_returns": [round(float(r), 1) for r in rand],
              "seeds": list(seeds), "config": dataclasses.asdict(cfg),
              "world_model": f"chapter 4's state Dreamer, profile {profile}, seed 0",
              "head_loss": [float(np.mean(head_losses[:10])), float(np.mean(head_losses[-50:]))]
              if head_losses else None,
              "value_loss": [float(np.mean(value_losses[:10])),
                             float(np.mean(value_losses[-50:]))]}
    if record:
        from wmlib.paths import show

        path = results.record(record, values, profile=profile, seed=int(seeds[0]),
                              wall_time_s=time.time() - start,
                              log="\n".join(lines) + "\n\n" + planet.run_log(agent),
                              notes=f"Every planner on chapter 4's world model, cartpole-{task}; "
                                    f"one episode per planner and seed {list(seeds)}.")
        log(f"recorded in {show(path)}")
    return values


__all__ = ["PLANNERS", "TASKS", "ComparisonConfig", "LatentMPC", "compare", "fit_reward_head",
           "fit_value", "load_world", "make_plan_fn", "posteriors_of", "run_comparison",
           "shooting_objective", "task_reward"]
