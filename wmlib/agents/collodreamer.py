"""ColloDreamer (M. Wan and J. Chen, "ColloDreamer: Latent Dynamics with Collocation and Value
Networks", UC Berkeley): Dreamer's world model and value network, with LatCo's latent collocation
(`wmlib.planners.collocation`) in place of Dreamer's actor. Equation numbers are Wan and Chen's.

* `latent_problem`: a trained world model as the functions collocation needs: the mean
  transition ``mean q(z_{t+1} | z_t, a_t)`` in feature space, the reward head and, for the
  value-bootstrapped return of eq. (9)/(10), the value network;
* `ColloDreamer`: Dreamer's networks without the actor (`wmlib.agents.dreamer.Dreamer`);
  `ColloDreamer.plan_value_loss` trains ``V`` on the targets of a plan (Algorithm 1, line
  "Update V(z_t)": the paper's second method, inside the planning loop), and
  `ColloDreamer.replay_value_loss` on the real latent trajectories of the replay (the first
  method, after execution); `ColloDreamer.augmented_loss` is the augmented latent objective of
  eq. (11);
* `ColloDreamerPolicy` plans with `LatCoPlanner` at every step, warm-started;
* `ColloDreamerAgent`: Algorithm 1 on the loop of chapters 3 and 4 (replay, checkpoints and
  resume, evaluation), with the world model learned by Dreamer's ELBO.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.agents.dreamer import CONFIGS as DREAMER_CONFIGS
from wmlib.agents.dreamer import STATE_CONFIGS as DREAMER_STATE_CONFIGS
from wmlib.agents.dreamer import Dreamer, DreamerConfig, step
from wmlib.agents.planet import PlaNet
from wmlib.loop import OnlineAgent, train_agent
from wmlib.models.actor_critic import ValueNet
from wmlib.models.rssm import State
from wmlib.objectives import lambda_return
from wmlib.planners.collocation import LatCoConfig, LatCoPlanner, LatentProblem, value_targets
from wmlib.training import scalars

VALUE_TRAINING = ("plan", "execution", "both")


@dataclass(frozen=True)
class ColloDreamerConfig(DreamerConfig):
    """Dreamer's world model and value settings, LatCo's planner (``latco``), and the choices
    Wan and Chen compare: ``bootstrap`` (the value at the horizon, eq. 9/10, or LatCo's finite
    eq. 8), ``value_training`` ("plan": inside the planning loop, their second method and
    Algorithm 1; "execution": on the executed trajectories after the episode, their first;
    "both"), ``augmented`` (the weight of eq. 11; 0 is off) and the value regularisers of
    their figure 1 (dropout, batch normalisation, value clipping)."""

    latco: LatCoConfig = field(default_factory=LatCoConfig)
    bootstrap: bool = True
    value_training: str = "plan"
    value_every: int = 1                # a value step every this many planning iterations
    augmented: float = 0.0
    old_model_every: int = 100          # refresh q_old of eq. 11 every this many updates
    plan_memory: int = 1000             # executed plans kept for eq. 11
    value_dropout: float = 0.0
    value_batch_norm: bool = False
    value_clip: tuple[float, float] | None = None


def mean_features(state: State) -> torch.Tensor:
    """``[deter, E[stoch]]``: the features of a state's mean (for categorical latents, the
    class probabilities), the point that collocation plans with."""
    mean = state.mean.softmax(-1).flatten(-2) if state.categorical else state.mean
    return torch.cat([state.deter, mean], -1)


def latent_problem(world: PlaNet, value: nn.Module | None = None, discount: float = 1.0,
                   reward: nn.Module | None = None) -> LatentProblem:
    """The collocation problem of a trained world model, over features ``z = [h, s]``.

    ``transition(z, a)`` runs one prior step of the RSSM from ``h = z[:deter]``, ``s =
    z[deter:]`` and returns the features of the prior's mean; ``reward`` defaults to the world
    model's head; ``value`` (with ``discount``) turns eq. (8) into eq. (10)."""
    dyn = world.dynamics
    D = dyn.deter_size

    def prior(z: torch.Tensor, a: torch.Tensor) -> State:
        """One prior step from the states whose features are ``z`` (flattened to [N, F])."""
        z, a = z.reshape(-1, z.shape[-1]), a.reshape(-1, a.shape[-1])
        s = z[:, D:]  # the planned mean of the stochastic part (Gaussian) or class probabilities
        stats = (s.new_zeros(len(s), dyn.variables, dyn.classes), s.new_zeros(len(s), 0)) \
            if dyn.classes else (s, torch.ones_like(s))
        return dyn.img_step(State(*stats, s, z[:, :D]), a)

    def transition(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return mean_features(prior(z, a)).reshape(*z.shape[:-1], -1)

    def transition_std(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return prior(z, a).std.reshape(*z.shape[:-1], -1)

    head = reward if reward is not None else world.predict_reward
    return LatentProblem(transition=transition, reward=head, value=value, discount=discount,
                         transition_std=None if dyn.classes else transition_std,
                         stoch=slice(D, None))


class ColloDreamer(Dreamer):
    """The world model (`PlaNet`) and the value ``V(z)`` of Dreamer, without an actor; the
    planner takes its place."""

    def __init__(self, cfg: ColloDreamerConfig, action_size: int,
                 obs_shape: tuple[int, ...] | None = None):
        super().__init__(cfg, action_size, obs_shape)
        del self.actor
        feature_size = self.world.dynamics.feature_size
        self.value = ValueNet(feature_size, cfg.units, dropout=cfg.value_dropout,
                              batch_norm=cfg.value_batch_norm, clip=cfg.value_clip)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False) \
            if cfg.slow_target_every else None
        # q_old of eq. (11): a frozen copy of the transition, refreshed every old_model_every.
        self.old_dynamics = copy.deepcopy(self.world.dynamics).requires_grad_(False) \
            if cfg.augmented else None

    def problem(self, reward: nn.Module | None = None) -> LatentProblem:
        """The collocation problem: eq. (10) with this value network when ``bootstrap``,
        LatCo's eq. (8) otherwise."""
        value = (self.target_value or self.value) if self.cfg.bootstrap else None
        return latent_problem(self.world, value, self.cfg.discount, reward)

    def value_targets(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Eq. (10) from every planned state (`wmlib.planners.collocation.value_targets`),
        bootstrapped by V' (the target critic when there is one): the targets of Algorithm 1's
        "Update V(z_t) using sum_k r(z_k^plan) + V'(q(z_H^plan, a_H^plan))"."""
        problem = latent_problem(self.world, self.target_value or self.value, self.cfg.discount)
        return value_targets(problem, z, a)

    def plan_value_loss(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The second method: ``1/2 (V(z_k) - V*(z_k))^2`` over the planned states."""
        targets = self.value_targets(z, a)
        return 0.5 * (self.value(z.detach()) - targets).pow(2).mean()

    def replay_value_loss(self, posteriors: State, reward: nn.Module | None = None
                          ) -> torch.Tensor:
        """The first method: the same targets along the real latent trajectories of a replay
        batch (posteriors ``[T, B]``, encoded from the observations of the executed actions),
        bootstrapped at the end of each chunk; ``reward`` defaults to the world model's head."""
        with torch.no_grad():
            z = mean_features(posteriors.detach())                               # [T, B, F]
            rewards = (reward or self.world.predict_reward)(z)
            critic = self.target_value or self.value
            bootstrap = critic(z[-1])
            discounts = torch.full_like(rewards[:-1], self.cfg.discount)
            targets = lambda_return(rewards[:-1], torch.zeros_like(rewards[:-1]), discounts,
                                    bootstrap, 1.0)
        return 0.5 * (self.value(z[:-1]) - targets).pow(2).mean()

    def augmented_loss(self, z: torch.Tensor, a: torch.Tensor, lam: torch.Tensor
                       ) -> torch.Tensor:
        """Eq. (11), negated to be minimised by the world model's optimiser:

            J_latent = (1 / lambda) m_phi(t) A(t),
            m_phi(t) = q(z_t | z_{t-1}, a_{t-1}) q(z_{t-1} | z_{t-2}, a_{t-2})
                       / (q_old(z_t | .) q_old(z_{t-1} | .)),
            A(t)     = r(z_t) + V(mean q(z_t, a_t)) - V(z_t),

        on executed plans ``z`` ``[N, H+1, F]``, ``a``, with their multipliers ``lam``
        ``[N, H]``: the transitions that gain value become more likely under the model, less so
        as the multipliers (the dynamics constraint) grow. The likelihoods are those of the
        planned stochastic part under the prior from the planned previous state; ``A`` and
        ``lambda`` carry no gradient (PPO's ratio trick). Guards (ours): m is capped at 10 and
        lambda is floored at 1."""
        D = self.world.dynamics.deter_size

        def log_q(dynamics):
            prev, nxt = z[:, :-1].reshape(-1, z.shape[-1]), z[:, 1:].reshape(-1, z.shape[-1])
            s = prev[:, D:]
            prior = dynamics.img_step(State(s, torch.ones_like(s), s, prev[:, :D]),
                                      a[:, :-1].reshape(-1, a.shape[-1]))
            return prior.dist().log_prob(nxt[:, D:]).view(z.shape[0], -1)         # [N, H]

        logq = log_q(self.world.dynamics)
        with torch.no_grad():
            logq_old = log_q(self.old_dynamics)
            problem = latent_problem(self.world, self.value, self.cfg.discount)
            zt, at = z[:, 1:], a[:, 1:]
            advantage = (problem.reward(zt) + problem.value(problem.transition(zt, at))
                         - problem.value(zt))                                       # [N, H]
        log_ratio = logq - logq_old
        # Two consecutive steps; two guards the report does not have, so that one term cannot
        # swamp the ELBO: the ratio is capped at 10, and multipliers that relaxed below 1 count
        # as 1.
        m = torch.exp((log_ratio[:, 1:] + log_ratio[:, :-1]).clamp(max=math.log(10.0)))
        return -(m * advantage[:, 1:] / lam[:, 1:].clamp_min(1.0)).mean()

    def update_old_model(self) -> None:
        if self.old_dynamics is not None:
            self.old_dynamics.load_state_dict(self.world.dynamics.state_dict())


class ColloDreamerPolicy:
    """Filter the belief with each observation, then plan from the mean features of the
    posterior with latent collocation (warm-started from the previous step's plan). With
    ``learn``, the value network takes a step on the plan's targets every ``value_every``
    iterations (the second method), and the executed plans are kept for eq. (11)."""

    def __init__(self, agent: ColloDreamerAgent, noise: float = 0.0, seed: int = 0,
                 learn: bool = False, reward: nn.Module | None = None):
        self.agent, self.noise, self.learn, self.reward = agent, noise, learn, reward
        self.model: ColloDreamer = agent.collo
        self.device = next(self.model.parameters()).device
        self.generator = devices.generator(self.device, seed)
        self.planner = LatCoPlanner(self.model.cfg.latco, self.model.world.action_size,
                                    self.device, self.generator)
        self.rng = np.random.default_rng(seed)
        self.trace: list | None = None      # set to a list to record the next plan
        self.reset()

    def reset(self) -> None:
        self.state = self.model.world.dynamics.initial(1)
        self.prev_action = torch.zeros(1, self.model.world.action_size, device=self.device)
        self.planner.reset()

    def _value_step(self, z: torch.Tensor, a: torch.Tensor) -> None:
        self.calls += 1
        if self.calls % self.model.cfg.value_every:
            return
        model, agent = self.model, self.agent
        model.value.train()
        with torch.enable_grad():
            loss = model.plan_value_loss(z, a)
            step(agent.value_optim, loss, model.value, model.cfg.grad_clip)
        model.value.eval()
        agent.value_losses.append(float(loss))

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        model = self.model
        world = model.world
        embed = world.embed(world.preprocess(obs, noise=False)[None])
        self.state, _ = world.dynamics.obs_step(self.state, self.prev_action, embed)
        z0 = mean_features(self.state)[0]
        model.value.eval()
        self.calls = 0
        train_value = self.learn and model.cfg.value_training in ("plan", "both")
        action = self.planner(model.problem(self.reward), z0, trace=self.trace,
                              on_iteration=self._value_step if train_value else None)
        if self.learn and model.cfg.augmented:
            z, a, lam, _ = self.planner.last
            self.agent.plans.append((z[0].cpu(), a[0].cpu(), lam[0].cpu()))
        action = action.cpu().numpy()
        if self.noise:
            action = action + self.noise * self.rng.standard_normal(action.shape)
        action = np.clip(action, -1.0, 1.0).astype(np.float32)
        self.prev_action = torch.as_tensor(action, device=self.device)[None]
        return action


class ColloDreamerAgent(OnlineAgent):
    """Wan and Chen's Algorithm 1 on the book's loop: seed episodes, then rounds of C world
    model updates (Dreamer's ELBO; the value too with the first method; eq. 11 when on) and
    one episode planned by collocation (the value trained inside the planner with the second
    method)."""

    NAME = "ColloDreamer"
    PUBLISHED = ("Published ColloDreamer (Wan and Chen, figure 13, train returns read off the "
                 "plots): about 80 on cheetah-run at 25k steps, 50 on quadruped-walk at 30k, "
                 "100 on reacher-easy at 25k (LatCo about 50, 50, 100; Dreamer about 100, 80, "
                 "230 in their runs). Cited, not ours.")

    def build(self, action_size: int, obs_shape: tuple[int, ...] | None = None) -> None:
        cfg = self.cfg
        if cfg.value_training not in VALUE_TRAINING:
            raise ValueError(f"value_training must be one of {VALUE_TRAINING}, got "
                             f"{cfg.value_training!r}")
        self.collo = ColloDreamer(cfg, action_size, obs_shape).to(self.device)
        self.model = self.collo.world
        adam = lambda module, lr: torch.optim.Adam(module.parameters(), lr=lr,  # noqa: E731
                                                   eps=cfg.adam_eps)
        self.optim = adam(nn.ModuleList(self.collo.world_modules()), cfg.lr)
        self.value_optim = adam(self.collo.value, cfg.value_lr)
        self.updates = 0
        self.value_losses: list[float] = []
        self.plans: collections.deque = collections.deque(maxlen=cfg.plan_memory)

    def modules(self) -> dict:
        return {"collo": self.collo, "optim": self.optim, "value_optim": self.value_optim}

    def make_policy(self, noise: float, seed: int) -> ColloDreamerPolicy:
        """Collection (``noise > 0``) learns the value inside the planner; evaluation does not."""
        return ColloDreamerPolicy(self, noise=noise, seed=seed, learn=noise > 0)

    def update(self) -> dict:
        cfg, c = self.cfg, self.collo
        batch = self.replay.sample(cfg.batch_size, cfg.chunk_length)
        loss, metrics, posteriors = c.world_loss(batch)
        if cfg.augmented and self.plans:
            idx = np.random.default_rng(self.updates).integers(len(self.plans), size=16)
            z, a, lam = (torch.stack([self.plans[i][k] for i in idx]).to(self.device)
                         for k in range(3))
            aug = c.augmented_loss(z, a, lam)
            loss = loss + cfg.augmented * aug
            metrics["augmented"] = aug.detach()
        step(self.optim, loss, nn.ModuleList(c.world_modules()), cfg.grad_clip)
        if cfg.value_training in ("execution", "both"):
            value_loss = c.replay_value_loss(posteriors)
            step(self.value_optim, value_loss, c.value, cfg.grad_clip)
            metrics["value_loss"] = value_loss.detach()
        elif self.value_losses:
            metrics["value_loss"] = float(np.mean(self.value_losses[-100:]))
        self.updates += 1
        if cfg.slow_target_every and self.updates % cfg.slow_target_every == 0:
            c.update_target()
        if cfg.augmented and self.updates % cfg.old_model_every == 0:
            c.update_old_model()
        return scalars(metrics)


def _profiles(base: dict) -> dict:
    """ColloDreamer's profiles on Dreamer's world model settings: LatCo's planner at the
    horizon and iterations each profile affords (the smoke profile: a few steps)."""
    def make(cfg: DreamerConfig, **kw) -> ColloDreamerConfig:
        fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(DreamerConfig)}
        return ColloDreamerConfig(**(fields | kw))
    return {
        "smoke": make(base["smoke"], latco=LatCoConfig(horizon=4, iterations=3,
                                                       warm_iterations=2)),
        # quick: chapter 4's state model and action repeat 8; horizon 12 (PlaNet's for
        # cartpole), 20 Gauss-Newton steps on a cold start and 5 after a warm start.
        "quick": make(base["quick"], latco=LatCoConfig(horizon=12, iterations=20,
                                                       warm_iterations=5, reward_scale=8.0)),
        "gpu": make(base["gpu"], latco=LatCoConfig()),
        "full": make(base["full"], latco=LatCoConfig()),
    }


CONFIGS = _profiles(DREAMER_CONFIGS)
STATE_CONFIGS = _profiles(DREAMER_STATE_CONFIGS)


# The ablations of Wan and Chen that the chapter runs: the value bootstrap (eq. 9-10 against
# LatCo's finite eq. 8), the two ways of training the value, and the augmented objective.
VARIANTS = {
    "default": {},                                   # bootstrap, value trained in the planner
    "no-bootstrap": {"bootstrap": False},            # LatCo's return, eq. (8)
    "execution": {"value_training": "execution"},    # the value trained after execution
    "augmented": {"augmented": 0.1},                 # eq. (11) added to the model's loss
}


# What must agree between a Dreamer run and a ColloDreamer that starts from it.
WORLD_FIELDS = ("env_id", "pixels", "action_repeat", "kind", "depth", "stoch_size", "classes",
                "deter_size", "hidden_size", "min_std", "bits")


def start_from(agent: ColloDreamerAgent, run_dir: str | Path) -> None:
    """Start ``agent`` from a trained Dreamer run of the same world-model configuration (its
    world model, the model's optimiser and the replay; the value starts afresh), unless
    ``agent`` already has a checkpoint to resume. Chapter 5 continues chapter 4's world model
    this way."""
    from wmlib.agents.dreamer import DreamerAgent
    from wmlib.paths import show

    if agent.run_dir is not None and (agent.run_dir / "checkpoint.pt").exists():
        return
    run_dir = Path(run_dir)
    saved = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    names = {f.name for f in dataclasses.fields(DreamerConfig)}
    source_cfg = DreamerConfig(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in saved["config"].items() if k in names})
    differ = [k for k in WORLD_FIELDS if getattr(source_cfg, k) != getattr(agent.cfg, k)]
    if differ:
        raise ValueError(
            f"The Dreamer run in {show(run_dir)} has another world model or task: "
            + ", ".join(f"{k} {getattr(source_cfg, k)!r} there, {getattr(agent.cfg, k)!r} here"
                        for k in differ)
            + ". Start from a run of the same profile (python -m wmlib train dreamer --state "
              "--profile P).")
    source = DreamerAgent(source_cfg, run_dir=run_dir, seed=agent.seed, device=agent.device)
    source.load()
    agent.collo.world.load_state_dict(source.dreamer.world.state_dict())
    agent.optim.load_state_dict(source.optim.state_dict())
    for episode in source.replay.episodes:
        agent.replay.add(episode)
    agent.save_replay()
    agent.log(f"started from the world model and the {len(source.replay)} episodes of "
              f"{show(Path(run_dir))}")


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, state: bool = False, variant: str = "default",
          init_from: str | Path | None = None, **overrides) -> ColloDreamerAgent:
    """Train ColloDreamer headless in a profile (``python -m wmlib train collodreamer``), from
    pixels or the state, with one of `VARIANTS`; ``init_from``: a Dreamer run directory to
    start from (`start_from`)."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown ColloDreamer variant {variant!r}; choose one of "
                         f"{list(VARIANTS)}.")
    prepare = (lambda agent: start_from(agent, init_from)) if init_from else None
    return train_agent(ColloDreamerAgent, STATE_CONFIGS if state else CONFIGS, profile,
                       run_dir, seed, env_id, episodes, progress, device, prepare=prepare,
                       **(VARIANTS[variant] | overrides))


__all__ = ["CONFIGS", "STATE_CONFIGS", "VALUE_TRAINING", "ColloDreamer", "ColloDreamerAgent",
           "ColloDreamerConfig", "ColloDreamerPolicy", "VARIANTS", "latent_problem",
           "mean_features", "start_from", "train"]
