"""Every planner of the book on one learned world model (chapter 5): random shooting, CEM,
MPPI, LatCo and ColloDreamer, each acting by model-predictive control from the belief that the
world model's filter keeps.

* `LatentMPC`: the policy (filter the belief with each observation, plan, act) with the time
  each plan took;
* `make_plan_fn`: a planner by name, on a world model with a reward head (and a value for
  ColloDreamer);
* `TASKS`: the comparison's tasks, each with its environment, the Dreamer run whose world model
  plans, the planners and their settings (reacher-easy: a world model trained on the sparse
  task's own data, every planner at about the same planning time per action);
* `fit_reward_head`: a new reward head for another task of the same physics (cartpole's sparse
  swing-up shares the dense task's dynamics and observations), trained on the frozen model's
  posteriors;
* `fit_value`: ColloDreamer's value trained on the replay's real latent trajectories (its
  first method, `wmlib.agents.collodreamer.ColloDreamer.replay_value_loss`);
* `compare`: the comparison's episodes, returns and planning times;
* `imagined_plans`: each planner's plan from one belief, rolled through the model (the
  predicted rewards and decoded observations of what the planner expects).
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
    about as long per action as LatCo does here. Random shooting draws ``random_candidates``
    sequences (default J). Collocation: `LatCoConfig`."""

    horizon: int = 12
    candidates: int = 1000
    random_candidates: int | None = None
    top_k: int = 100
    iterations: int = 10
    equal_time_candidates: int = 300
    equal_time_top_k: int = 30
    temperature: float = 0.5
    latco: LatCoConfig = field(default_factory=lambda: LatCoConfig(
        horizon=12, iterations=20, warm_iterations=5, reward_scale=8.0))
    discount: float = 0.99


@dataclass(frozen=True)
class Task:
    """One comparison: the environment, the Dreamer run whose world model every planner uses
    (``runs/<world>_<profile>``, trained on ``world_env``, with standardised states when
    ``obs_norm``), the planners and their settings."""

    env_id: str
    world: str
    world_env: str
    planners: tuple[str, ...]
    config: ComparisonConfig
    obs_norm: bool = False


EQUAL_TIME = ("random", "cem", "mppi", "latco", "collodreamer")

# Cartpole: PlaNet's horizon of 12 decisions for the dense swing-up; LatCo's 30 for the sparse
# one, whose reward may lie beyond 12 decisions (96 control steps at action repeat 8). The
# equal-time CEM's candidates were set so that it plans about as long per action as LatCo
# on a 2-core CPU (measured, see the recorded times); the sparse swing-up plans with a reward
# head fitted on the dense model (`task_reward`).
# Reacher-easy: the reward is 1 while the finger touches the target and exactly 0 elsewhere
# (dm_control's `tolerance` without a margin), the kind of sparse reaching task on which
# Rybkin et al. report collocation ahead of shooting; its world model is trained on the
# task's own data, with standardised states (`PlaNetConfig.obs_norm`: unnormalised, its latent
# did not encode the finger-to-target offset and its reward head explained 3% of the reward's
# variance), and every planner gets about LatCo's time per action at LatCo's horizon of 30
# decisions: CEM and MPPI 300 candidates for 10 iterations, random shooting the same 3,000
# sequences in one draw (measured on a 2-core CPU, see the recorded times).
TASKS = {
    "swingup": Task("dmc:cartpole-swingup", "dreamer_state", "dmc:cartpole-swingup", PLANNERS,
                    ComparisonConfig(equal_time_candidates=450, equal_time_top_k=45)),
    "swingup_sparse": Task(
        "dmc:cartpole-swingup_sparse", "dreamer_state", "dmc:cartpole-swingup", PLANNERS,
        ComparisonConfig(horizon=30, equal_time_candidates=300, equal_time_top_k=30,
                         latco=LatCoConfig(horizon=30, iterations=20, warm_iterations=5,
                                           reward_scale=8.0))),
    "reacher_easy": Task(
        "dmc:reacher-easy", "dreamer_state_reacher_obsnorm", "dmc:reacher-easy", EQUAL_TIME,
        ComparisonConfig(horizon=30, candidates=300, top_k=30, random_candidates=3000,
                         latco=LatCoConfig(horizon=30, iterations=20, warm_iterations=5,
                                           reward_scale=8.0)), obs_norm=True),
}


def get_task(task: str) -> Task:
    """`TASKS`'s entry, or a clear error naming the tasks there are."""
    if task not in TASKS:
        raise ValueError(f"Unknown comparison task {task!r}; choose one of {sorted(TASKS)}.")
    return TASKS[task]


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


def shoot(name: str, objective, cfg: ComparisonConfig, action_size: int, device=None,
          generator: torch.Generator | None = None) -> torch.Tensor:
    """The first action of shooting planner ``name`` (random, cem, cem_equal_time, mppi) on
    ``objective`` (``actions [J, H, A] -> returns [J]``) with ``cfg``'s budget."""
    H, A, kw = cfg.horizon, action_size, dict(device=device, generator=generator)
    if name == "random":
        return random_shooting(objective, H, A, cfg.random_candidates or cfg.candidates, **kw)
    if name == "cem":
        return cem_plan(objective, H, A, cfg.candidates, cfg.top_k, cfg.iterations, **kw)
    if name == "cem_equal_time":
        return cem_plan(objective, H, A, cfg.equal_time_candidates, cfg.equal_time_top_k,
                        cfg.iterations, **kw)
    if name == "mppi":
        return mppi_plan(objective, H, A, cfg.candidates, cfg.top_k, cfg.iterations,
                         cfg.temperature, **kw)
    raise ValueError(f"{name!r} is not a shooting planner.")


def make_plan_fn(name: str, world: PlaNet, reward: nn.Module, value: nn.Module | None,
                 cfg: ComparisonConfig, generator: torch.Generator | None = None):
    """``plan(state) -> action [A]`` for planner ``name`` (one of `PLANNERS`), plus a
    ``reset`` for the planners that keep a warm start."""
    device, A = world._device(), world.action_size
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
        return shoot(name, shooting_objective(world, reward, state), cfg, A, device, generator)
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


def keep_best(objective):
    """``objective`` wrapped to remember the best sequence it ever scored: returns the wrapped
    objective and the dict where ``"actions"`` ``[H, A]`` and ``"return"`` are kept."""
    best = {"return": -float("inf"), "actions": None}

    def recording(candidates: torch.Tensor) -> torch.Tensor:
        returns = objective(candidates)
        i = int(returns.argmax())
        if returns[i] > best["return"]:
            best.update({"return": float(returns[i]), "actions": candidates[i]})
        return returns
    return recording, best


@torch.no_grad()
def first_belief(world: PlaNet, env, seed: int) -> State:
    """The belief ``q(s_1 | o_1)`` ([1]) after the first observation of episode ``seed``."""
    obs, _ = env.reset(seed=seed)
    embed = world.embed(world.preprocess(obs, noise=False)[None])
    action = torch.zeros(1, world.action_size, device=world._device())
    return world.dynamics.obs_step(world.dynamics.initial(1), action, embed)[0]


@torch.no_grad()
def imagined_plans(world: PlaNet, reward: nn.Module, value: nn.Module | None, state: State,
                   planners, cfg: ComparisonConfig, seed: int = 0) -> dict[str, dict]:
    """What each planner expects from the belief ``state`` ([1]): its plan (for shooting, the
    best sequence it evaluated; for collocation, the optimised actions), rolled through the
    model's mean dynamics from the belief's mean (`collocation.rollout`). Per planner:
    ``actions [H, A]``, the predicted ``rewards [H]`` and decoded observations ``obs [H+1, D]``
    (the start first), as lists."""
    from wmlib.planners.collocation import rollout

    device, A, H = world._device(), world.action_size, cfg.horizon
    z0 = mean_features(state)
    mean_model = latent_problem(world, None, 1.0, reward)
    out = {}
    for name in planners:
        gen = devices.generator(device, seed)
        if name in ("latco", "collodreamer"):
            trace: list = []
            planner = LatCoPlanner(cfg.latco, A, device, gen)
            problem = latent_problem(world, value if name == "collodreamer" else None,
                                     cfg.discount if name == "collodreamer" else 1.0, reward)
            planner(problem, z0[0], trace=trace)
            actions = trace[-1]["a"][0, :H].to(device).clamp(cfg.latco.low, cfg.latco.high)
        else:
            recording, best = keep_best(shooting_objective(world, reward, state))
            shoot(name, recording, cfg, A, device, gen)
            actions = best["actions"].clamp(-1, 1)
        padded = torch.cat([actions, actions[-1:]])             # rollout's a_H, unused
        z = rollout(mean_model, z0, padded[None])[0]            # [H+1, F], z_0 the belief
        out[name] = {"actions": actions.cpu().tolist(),
                     "rewards": reward(z[1:]).cpu().tolist(),
                     "obs": world.postprocess(world.decode(z)).cpu().tolist()}
    return out


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


def load_world(profile: str, device=None, run_dir=None, env_id: str | None = None,
               world: str = "dreamer_state", obs_norm: bool = False):
    """A state Dreamer of ``profile`` trained on ``env_id`` (default chapter 4's cartpole; its
    world model is what every planner here plans with), loaded from ``run_dir`` (default
    ``runs/<world>_<profile>``); a clear error, with the command that trains it, when missing."""
    from wmlib import paths
    from wmlib.agents import dreamer

    cfg = dreamer.STATE_CONFIGS[profile]
    cfg = dataclasses.replace(cfg, env_id=env_id or cfg.env_id, obs_norm=obs_norm)
    run_dir = paths.runs_dir(f"{world}_{profile}") if run_dir is None else Path(run_dir)
    if not (run_dir / "checkpoint.pt").exists():
        env = "" if cfg.env_id == dreamer.STATE_CONFIGS[profile].env_id else f" --env {cfg.env_id}"
        raise FileNotFoundError(
            f"No trained world model in {paths.show(run_dir)}. Train a state Dreamer on "
            f"{cfg.env_id} first: python -m wmlib train dreamer --state"
            f"{' --obs-norm' if obs_norm else ''} --profile {profile}{env} "
            f"--run-dir {paths.show(run_dir)}")
    agent = dreamer.DreamerAgent(cfg, run_dir=run_dir, seed=0, device=device)
    agent.load()
    agent.dreamer.eval()
    return agent


def task_reward(agent, env_id: str, episodes: int = 40, steps: int = 2000, seed: int = 0,
                progress: bool = True):
    """The environment ``env_id`` and a reward head for it on the world model: the model's own
    head for the task it was trained on; for another task of the same physics (cartpole's
    ``swingup_sparse`` on the dense model), a new head fitted on ``episodes`` episodes of the
    task played by the agent's actor (every other one with exploration noise 0.3). Returns
    ``(env, head, replay, head_losses)``."""
    from wmlib import envs
    from wmlib.replay import Replay
    from wmlib.rollout import run_episode

    cfg = agent.cfg
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


def run_comparison(profile: str, task: str, seeds=(0, 1, 2), planners=None,
                   record: str | None = None, device=None, progress: bool = True,
                   value_steps: int = 2000, head_steps: int = 2000, max_steps=None,
                   world_dir=None) -> dict:
    """Chapter 5's planner comparison on one of `TASKS`: the task's world model
    (`load_world`), its reward head (`task_reward`) and ColloDreamer's value (`fit_value`, the
    first method); then each planner's imagined plan from each seed's first belief
    (`imagined_plans`), one episode per planner and seed, and random actions on the same
    seeds. ``planners``: default the task's. Recorded in ``results/<record>.json`` when
    ``record`` is given. ``world_dir``: the Dreamer run to load (default
    ``runs/<task.world>_<profile>``)."""
    from wmlib import results
    from wmlib.agents import collodreamer, planet
    from wmlib.rollout import random_policy, run_episode

    spec = get_task(task)
    planners = tuple(planners or spec.planners)
    start = time.time()
    lines: list[str] = []

    def log(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    agent = load_world(profile, device, world_dir, spec.world_env, spec.world, spec.obs_norm)
    world = agent.dreamer.world
    env, head, replay, head_losses = task_reward(agent, spec.env_id, steps=head_steps,
                                                 progress=progress)
    if head_losses:
        log(f"reward head for {task}: loss {np.mean(head_losses[:10]):.3f} -> "
            f"{np.mean(head_losses[-50:]):.3f} (reward variance "
            f"{np.var(np.concatenate([e['reward'] for e in replay.episodes])):.3f})")
    ccfg = dataclasses.replace(collodreamer.STATE_CONFIGS[profile], obs_norm=spec.obs_norm)
    collo = collodreamer.ColloDreamer(ccfg, world.action_size, world.obs_shape).to(world._device())
    collo.world.load_state_dict(world.state_dict())
    collo.eval()
    chunk = min(32, min(len(e["reward"]) for e in replay.episodes))
    value_losses = fit_value(collo, replay, value_steps, head, chunk_length=chunk,
                             progress=progress)
    log(f"value (first method, {value_steps} steps): loss {np.mean(value_losses[:10]):.1f} -> "
        f"{np.mean(value_losses[-50:]):.1f}")
    cfg = spec.config
    if profile == "smoke":  # a few candidates and iterations: the code runs, nothing more
        cfg = dataclasses.replace(cfg, horizon=4, candidates=20, top_k=4, iterations=2,
                                  random_candidates=None,
                                  equal_time_candidates=10, equal_time_top_k=2,
                                  latco=dataclasses.replace(cfg.latco, horizon=4, iterations=3,
                                                            warm_iterations=2))
    max_steps = max_steps if max_steps is not None else agent.cfg.max_steps
    plans = {seed: imagined_plans(world, head, collo.value, first_belief(world, env, seed),
                                  planners, cfg, seed) for seed in seeds}
    for seed, by in plans.items():
        log(f"seed {seed}, imagined return of each plan from the first belief: " + ", ".join(
            f"{name} {sum(p['rewards']):.1f}" for name, p in by.items()))
    rows = compare(env, world, head, collo.value, planners, seeds, cfg, max_steps, log)
    rand = [run_episode(env, random_policy(env, seed=s), seed=s, max_steps=max_steps)[1]["return"]
            for s in seeds]
    log(f"random actions, same seeds: {np.round(rand, 1).tolist()}")
    world_model = (f"a state Dreamer trained on {spec.world_env}, profile {profile}, seed 0"
                   + (" (chapter 4's)" if spec.world == "dreamer_state" else ""))
    values = {"task": task, "env_id": spec.env_id,
              "rows": rows, "random_returns": [round(float(r), 1) for r in rand],
              "seeds": list(seeds), "config": dataclasses.asdict(cfg),
              "world_model": world_model, "action_repeat": agent.cfg.action_repeat,
              "imagined_plans": {str(k): v for k, v in plans.items()},
              "head_loss": [float(np.mean(head_losses[:10])), float(np.mean(head_losses[-50:]))]
              if head_losses else None,
              "value_loss": [float(np.mean(value_losses[:10])),
                             float(np.mean(value_losses[-50:]))]}
    if record:
        from wmlib.paths import show

        path = results.record(record, values, profile=profile, seed=int(seeds[0]),
                              wall_time_s=time.time() - start,
                              log="\n".join(lines) + "\n\n" + planet.run_log(agent),
                              notes=f"Every planner on {world_model}, {spec.env_id}; one "
                                    f"episode per planner and seed {list(seeds)}.")
        log(f"recorded in {show(path)}")
    return values


__all__ = ["EQUAL_TIME", "PLANNERS", "TASKS", "ComparisonConfig", "LatentMPC", "Task", "compare",
           "first_belief", "fit_reward_head", "fit_value", "get_task", "imagined_plans",
           "keep_best", "load_world", "make_plan_fn", "posteriors_of", "run_comparison", "shoot",
           "shooting_objective", "task_reward"]
