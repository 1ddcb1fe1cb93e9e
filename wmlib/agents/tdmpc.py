"""TD-MPC (Hansen, Wang and Su 2022, "Temporal Difference Learning for Model Predictive
Control", ICML 2022, arXiv:2203.04955): MPPI planning in the latent space of a
*task-oriented* latent dynamics model, TOLD, that predicts rewards and values and is never
asked to reconstruct its input, from the proprioceptive state.

The pieces (the paper's symbols, its section 3 and table of hyperparameters, and its
released code where the paper leaves a detail open):

* `TOLD`: the representation ``z = h_theta(s)``, the latent dynamics ``z' = d_theta(z, a)``,
  the reward ``r_hat = R_theta(z, a)``, two values ``Q_theta^1, Q_theta^2`` (LayerNorm and
  tanh after the first layer) and the deterministic policy ``a = pi_theta(z)`` (tanh);
* `told_loss`: the TOLD objective, the temporally weighted sum over a sampled H-step
  sub-trajectory of the reward, TD-value and latent-consistency losses, with the target
  networks ``theta^-`` an exponential moving average of theta (`ema_update`, rate ``tau``);
* `policy_loss`: the policy objective ``-sum_i rho^i min_k Q_k(sg(z_i), pi_theta(sg(z_i)))``,
  the Q networks frozen;
* `plan`: MPPI (`wmlib.planners.mppi_plan`) over H-step action sequences scored by
  ``phi = sum_t gamma^t R(z_t, a_t) + gamma^H min_k Q_k(z_H, pi(z_H))`` through the learned
  dynamics, with N_pi trajectories of pi_theta beside the N Gaussian samples, a warm start
  from the previous step's mean and momentum;
* `TDMPCAgent`: all of it on the book's loop (`wmlib.loop.OnlineAgent`: S seed episodes,
  then C updates per collected episode, evaluations, checkpoints and resume), and `train`,
  a headless run in a profile (``python -m wmlib train tdmpc``).

Replay batches are ``[B, T, ...]`` with the replay's alignment (`wmlib.replay`): ``action[t]``
led to ``obs[t]`` and ``reward[t]`` was received on that transition, so from ``obs[t]`` the
action taken is ``action[t + 1]`` and its reward ``reward[t + 1]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.agents.dreamer import frozen, step
from wmlib.agents.planet import PlaNetConfig
from wmlib.dreamerv3 import ema_update
from wmlib.loop import OnlineAgent, train_agent
from wmlib.nets import mlp
from wmlib.planners.mppi import mppi_plan
from wmlib.training import scalars


@dataclass(frozen=True)
class TDMPCConfig(PlaNetConfig):
    """PlaNet's fields of the environment, the replay and Algorithm 1 (the loop's), with
    TD-MPC's values (its table of hyperparameters and released ``default.yaml``), and TD-MPC's own.

    PlaNet's world-model and CEM fields (``kind``, ``depth``, ``stoch_size``, ``deter_size``,
    ``hidden_size``, ``candidates``, ``top_k``, ``chunk_length`` ...) are not used: TOLD's sizes
    are ``latent_dim``, ``enc_dim`` and ``mlp_dim``, its sequences are ``horizon + 1`` long.
    """

    pixels: bool = False                # TD-MPC from the proprioceptive state only
    action_repeat: int | None = None    # PlaNet's per-domain repeat: cartpole 8, as TD-MPC's
    # TOLD (TD-MPC: latent 50, encoder 256, MLPs 512 wide with two hidden layers, ELU).
    latent_dim: int = 50
    enc_dim: int = 256
    mlp_dim: int = 512
    # The TOLD objective: J = sum_i rho^i (c1 L_R + c2 L_Q + c3 L_consistency).
    horizon: int = 5                    # H, of the loss and of planning
    rho: float = 0.5                    # the temporal weight lambda of the paper (rho in code)
    reward_coef: float = 0.5            # c1
    value_coef: float = 0.1             # c2
    consistency_coef: float = 2.0       # c3
    discount: float = 0.99              # gamma
    tau: float = 0.01                   # theta^- <- (1 - tau) theta^- + tau theta ...
    update_freq: int = 2                # ... every this many updates (the released code's)
    # Optimisation: Adam 1e-3 (torch's eps), gradient norm clipped at 10, batch 512.
    lr: float = 1e-3
    adam_eps: float = 1e-8
    grad_clip: float = 10.0
    batch_size: int = 512
    # MPPI (TD-MPC: 6 iterations, N = 512 samples, K = 64 elites, N_pi = 5% of N = 25 policy
    # trajectories, temperature 0.5, momentum 0.1).
    iterations: int = 6
    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 25
    temperature: float = 0.5
    momentum: float = 0.1
    min_std: float = 0.05               # the policy's noise std (pi(z, min_std) in the TD
                                        # target, the policy loss and planning; 0: none)
    # Exploration: sigma's lower clamp in MPPI decays linearly from std_start to std_end over
    # std_steps agent steps (decisions, x action_repeat environment steps), and the planner's
    # final sigma of the first action times exploration_noise is added while collecting. The
    # planning horizon grows linearly from 1 to H over horizon_steps agent steps (0: H from
    # the start). TD-MPC: 0.5 -> 0.05 and 1 -> 5, both over 25,000 agent steps.
    std_start: float = 0.5
    std_end: float = 0.05
    std_steps: int = 25_000
    horizon_steps: int = 25_000
    exploration_noise: float = 1.0      # a multiple of the planner's sigma (0: evaluation)
    # Algorithm 1: C = one update per agent step of an episode (TD-MPC's replay ratio; a
    # 1000-step DMC episode at action repeat 8 has 125).
    collect_interval: int = 125
    seed_episodes: int = 5
    episodes: int = 500                 # TD-MPC: 500k environment steps on DMC (seed incl.)
    eval_every: int = 10
    eval_episodes: int = 10


# Checkpoints saved before an option existed load when it holds the old behaviour's value.
TDMPCConfig.LEGACY = dict(PlaNetConfig.LEGACY)

CONFIGS = {
    "smoke": TDMPCConfig(latent_dim=8, enc_dim=16, mlp_dim=16, horizon=2, batch_size=8,
                         iterations=2, num_samples=16, num_elites=4, num_pi_trajs=2,
                         std_steps=100, horizon_steps=0, seed_episodes=2, collect_interval=3,
                         episodes=2, eval_every=2, eval_episodes=1, max_steps=10),
    # Sized for 2 CPU cores: TD-MPC's latent, MLPs of 256, batch 256, cartpole's action
    # repeat 8 (episodes of 125 decisions), C = 125 updates per episode (TD-MPC's replay
    # ratio), the schedules shortened to 5,000 agent steps (40k environment steps, about two
    # thirds of a half-hour run: 20-30 s per round on one core), a 30-minute budget like
    # Dreamer's from the state.
    "quick": TDMPCConfig(mlp_dim=256, batch_size=256, action_repeat=8, collect_interval=125,
                         std_steps=5_000, horizon_steps=5_000, episodes=300, eval_every=5,
                         eval_episodes=2, budget_s=30 * 60.0),
    # One GPU session: the paper's sizes and planner, a 50-minute budget.
    "gpu": TDMPCConfig(episodes=200, eval_every=10, eval_episodes=2, budget_s=50 * 60.0),
    # The paper's: 500k environment steps (500 episodes of 1000), the first 5,000 agent steps
    # random as in the released code (40 cartpole episodes at action repeat 8), then 460.
    "full": TDMPCConfig(seed_episodes=40, episodes=460),
}


def linear_schedule(start: float, end: float, steps: int, step: int) -> float:
    """``start`` moved linearly to ``end`` over ``steps`` steps, then ``end`` (TD-MPC's
    ``linear(start, end, steps)``); ``end`` at once when ``steps`` is 0."""
    mix = min(max(step / steps, 0.0), 1.0) if steps else 1.0
    return (1.0 - mix) * start + mix * end


def exploration_std(cfg: TDMPCConfig, step: int) -> float:
    """epsilon, MPPI's lower clamp of sigma after ``step`` agent steps (0.5 -> 0.05)."""
    return linear_schedule(cfg.std_start, cfg.std_end, cfg.std_steps, step)


def planning_horizon(cfg: TDMPCConfig, step: int) -> int:
    """The planning horizon after ``step`` agent steps (1 -> H, as the released code)."""
    return int(min(cfg.horizon, linear_schedule(1, cfg.horizon, cfg.horizon_steps, step)))


def _q_net(in_dim: int, hidden: int) -> nn.Sequential:
    """One of TD-MPC's Q networks: Linear, LayerNorm, tanh, then Linear, ELU, Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.LayerNorm(hidden), nn.Tanh(),
                         nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 1))


class TOLD(nn.Module):
    """TD-MPC's Task-Oriented Latent Dynamics model: h_theta, d_theta, R_theta, Q_theta (two
    networks, for the clipped double-Q minimum) and pi_theta.

    Initialised as the released code: orthogonal weights, zero biases, and the last layers of
    R_theta and the Q networks at zero (every prediction starts at 0).
    """

    def __init__(self, cfg: TDMPCConfig, obs_dim: int, action_size: int):
        super().__init__()
        self.cfg, self.action_size = cfg, action_size
        L, A, M = cfg.latent_dim, action_size, cfg.mlp_dim
        self.encoder = mlp(obs_dim, L, cfg.enc_dim, 1)       # h_theta: s -> z
        self.dynamics = mlp(L + A, L, M, 2)                  # d_theta: (z, a) -> z'
        self.reward_net = mlp(L + A, 1, M, 2)                # R_theta: (z, a) -> r_hat
        self.q1, self.q2 = _q_net(L + A, M), _q_net(L + A, M)  # Q_theta^1, Q_theta^2
        self.policy = mlp(L, A, M, 2)                        # pi_theta: z -> a (tanh)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)
        for net in (self.reward_net, self.q1, self.q2):
            nn.init.zeros_(net[-1].weight)

    def h(self, s: torch.Tensor) -> torch.Tensor:
        """The representation ``z = h_theta(s)``: states ``[..., D]`` -> latents ``[..., L]``."""
        return self.encoder(s)

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The latent dynamics ``z' = d_theta(z, a)``."""
        return self.dynamics(torch.cat([z, a], -1))

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """The reward ``R_theta(z, a)``, ``[...]``."""
        return self.reward_net(torch.cat([z, a], -1)).squeeze(-1)

    def Q(self, z: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two values ``(Q_theta^1(z, a), Q_theta^2(z, a))``, each ``[...]``."""
        x = torch.cat([z, a], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def pi(self, z: torch.Tensor, std: float = 0.0,
           generator: torch.Generator | None = None) -> torch.Tensor:
        """The policy ``pi_theta(z) = tanh(f(z))``; with ``std > 0`` plus Gaussian noise of that
        std clipped at +-0.3, the sum clamped into [-1, 1] with a straight-through gradient (the
        released code's ``TruncatedNormal(mu, std).sample(clip=0.3)``)."""
        mu = torch.tanh(self.policy(z))
        if std <= 0:
            return mu
        eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
        x = mu + (std * eps).clamp(-0.3, 0.3)
        return x - x.detach() + x.detach().clamp(-1 + 1e-6, 1 - 1e-6)


def prepare(batch: dict, horizon: int, device) -> tuple[torch.Tensor, ...]:
    """A replay batch of ``H + 1`` steps ``[B, H + 1, ...]`` -> time-major ``s_0..s_H``
    ``[H + 1, B, D]``, and the actions ``a_0..a_{H-1}`` ``[H, B, A]``, rewards ``r_i`` and
    continuation flags ``[H, B]`` of the transitions ``s_i -> s_{i+1}`` (the replay's
    ``action[i + 1]``, ``reward[i + 1]`` and ``discount[i + 1]``; 0 after a terminal step)."""
    T = batch["obs"].shape[1]
    if T != horizon + 1:
        raise ValueError(f"TD-MPC's loss takes sequences of H + 1 = {horizon + 1} steps, got "
                         f"{T}; sample the replay with length cfg.horizon + 1.")
    get = lambda k: devices.to_device(batch[k], device, torch.float32).transpose(0, 1)  # noqa: E731
    obs, actions, rewards = get("obs"), get("action")[1:], get("reward")[1:]
    cont = get("discount")[1:] if "discount" in batch else torch.ones_like(rewards)
    return obs, actions, rewards, cont


def told_loss(model: TOLD, target: TOLD, batch: dict, cfg: TDMPCConfig
              ) -> tuple[torch.Tensor, dict, list[torch.Tensor]]:
    """TD-MPC's TOLD objective on a replay batch of H + 1 steps: from ``z_0 = h_theta(s_0)``
    roll ``z_{i+1} = d_theta(z_i, a_i)`` for i = 0..H-1 and sum

        rho^i [ c1 ||R_theta(z_i, a_i) - r_i||^2
              + c2 sum_k ||Q_k(z_i, a_i) - (r_i + gamma min_k Q^-_k(z'_{i+1}, pi(z'_{i+1})))||^2
              + c3 ||z_{i+1} - h_theta^-(s_{i+1})||^2 ]

    averaged over the batch; the TD target and the consistency target ``h_theta^-(s_{i+1})``
    carry no gradient. As in the released code: ``z'_{i+1} = h_theta(s_{i+1})`` encodes the
    next state with the online encoder, the target's action is ``pi_theta(z'_{i+1})`` with
    ``cfg.min_std`` noise, the consistency term is the mean over the latent's dimensions, and
    each term is clamped at 1e4. Beyond the paper (no effect on DMC, whose episodes never
    terminate): the bootstrap is multiplied by the replay's continuation flag.

    Returns the loss, its detached terms (``loss``, ``reward_loss``, ``value_loss``,
    ``consistency_loss``, ``td_target``) and the latents ``z_0..z_H`` (detached) for
    `policy_loss`.
    """
    obs, actions, rewards, cont = prepare(batch, cfg.horizon, next(model.parameters()).device)
    with torch.no_grad():
        next_z = model.h(obs[1:])                                        # z'_{i+1}
        q_next = torch.min(*target.Q(next_z, model.pi(next_z, cfg.min_std)))
        td_target = rewards + cfg.discount * cont * q_next              # [H, B]
        consistency_target = target.h(obs[1:])                           # h_theta^-(s_{i+1})
    z = model.h(obs[0])
    zs = [z.detach()]
    reward_l = value_l = consistency_l = 0.0
    for i in range(cfg.horizon):
        a, w = actions[i], cfg.rho ** i
        q1, q2 = model.Q(z, a)
        r_hat = model.reward(z, a)
        z = model.next(z, a)
        zs.append(z.detach())
        reward_l = reward_l + w * (r_hat - rewards[i]) ** 2
        value_l = value_l + w * ((q1 - td_target[i]) ** 2 + (q2 - td_target[i]) ** 2)
        consistency_l = consistency_l + w * ((z - consistency_target[i]) ** 2).mean(-1)
    total = (cfg.reward_coef * reward_l.clamp(max=1e4) + cfg.value_coef * value_l.clamp(max=1e4)
             + cfg.consistency_coef * consistency_l.clamp(max=1e4))
    loss = total.mean()
    metrics = {"loss": loss.detach(), "reward_loss": reward_l.mean().detach(),
               "value_loss": value_l.mean().detach(),
               "consistency_loss": consistency_l.mean().detach(),
               "td_target": td_target[0].mean().detach()}
    return loss, metrics, zs


def policy_loss(model: TOLD, zs: list[torch.Tensor], cfg: TDMPCConfig) -> torch.Tensor:
    """TD-MPC's policy objective ``-sum_i rho^i min_k Q_k(sg(z_i), pi(sg(z_i)))``
    over the latents ``z_0..z_H`` of `told_loss` (batch mean; the action with ``cfg.min_std``
    noise, as in the released code). The gradient flows through the Q networks into pi_theta
    only: the latents are detached and the Q networks' parameters frozen."""
    loss = 0.0
    with frozen(model.q1, model.q2):
        for i, z in enumerate(zs):
            z = z.detach()
            loss = loss - cfg.rho ** i * torch.min(*model.Q(z, model.pi(z, cfg.min_std))).mean()
    return loss


@torch.no_grad()
def plan(model: TOLD, z: torch.Tensor, cfg: TDMPCConfig, step: int = 0,
         prev_mean: torch.Tensor | None = None, explore: float = 0.0,
         generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """TD-MPC's planner (section 3.2) from the latent ``z`` ``[1, L]`` after
    ``step`` agent steps: MPPI (`wmlib.planners.mppi_plan`) over action sequences of the
    scheduled horizon H (`planning_horizon`), each scored through the learned dynamics by

        phi_Gamma = sum_{t<H} gamma^t R_theta(z_t, a_t) + gamma^H min_k Q_k(z_H, pi(z_H)),

    with N_pi sequences of the policy (``a_t = pi(z_t)`` with ``cfg.min_std`` noise, rolled
    through d_theta) scored and kept beside the N Gaussian samples, the mean warm-started from
    ``prev_mean`` (the previous step's, shifted by one step; zeros at an episode's start),
    momentum, sigma started at 2 and clamped to [epsilon, 2], epsilon the exploration schedule
    (`exploration_std`). With ``explore > 0`` the chosen action gets Gaussian noise of
    ``explore`` times the final sigma of the first action (the released code's exploration).

    Returns the action ``[A]`` in [-1, 1] and the final mean ``[H, A]`` (the next step's warm
    start).
    """
    device, A = z.device, model.action_size
    H = planning_horizon(cfg, step)
    z = z.reshape(1, -1)
    extra = None
    if cfg.num_pi_trajs:                    # the N_pi trajectories of pi_theta through d_theta
        zp, acts = z.expand(cfg.num_pi_trajs, -1), []
        for _ in range(H):
            acts.append(model.pi(zp, cfg.min_std, generator))
            zp = model.next(zp, acts[-1])
        extra = torch.stack(acts, 1)        # [N_pi, H, A]
    init = torch.zeros(H, A, device=device)
    if prev_mean is not None:               # the previous plan shifted by one step
        k = min(H - 1, prev_mean.shape[0] - 1)
        init[:k] = prev_mean[1:k + 1]

    def objective(actions: torch.Tensor) -> torch.Tensor:   # [J, H, A] -> phi_Gamma [J]
        zt = z.expand(actions.shape[0], -1)
        ret, discount = 0.0, 1.0
        for t in range(H):
            ret = ret + discount * model.reward(zt, actions[:, t])
            zt = model.next(zt, actions[:, t])
            discount *= cfg.discount
        ret = ret + discount * torch.min(*model.Q(zt, model.pi(zt, cfg.min_std, generator)))
        return ret.nan_to_num(0.0)

    state: dict = {}
    action = mppi_plan(objective, H, A, candidates=cfg.num_samples, top_k=cfg.num_elites,
                       iterations=cfg.iterations, temperature=cfg.temperature,
                       min_std=exploration_std(cfg, step), device=device, generator=generator,
                       extra=extra, init_mean=init, momentum=cfg.momentum, init_std=2.0,
                       max_std=2.0, state=state)
    if explore:
        noise = torch.randn(A, device=device, generator=generator)
        action = action + explore * state["std"][0] * noise
    return action.clamp(-1.0, 1.0), state["mean"]


class TDMPCPolicy:
    """Act by TD-MPC's planner: encode the state, `plan` warm-started from the last step's
    mean, explore with ``noise`` times the planner's sigma (0: evaluation, no noise). ``step``
    (agent steps so far) sets the schedules; `reset` at an episode's start."""

    def __init__(self, model: TOLD, cfg: TDMPCConfig, noise: float = 0.0, seed: int = 0,
                 step: int = 0):
        self.model, self.cfg, self.noise, self.step = model, cfg, noise, step
        self.device = next(model.parameters()).device
        self.generator = devices.generator(self.device, seed)
        self.reset()

    def reset(self) -> None:
        self.prev_mean = None

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        z = self.model.h(devices.to_device(obs, self.device, torch.float32)[None])
        action, self.prev_mean = plan(self.model, z, self.cfg, self.step, self.prev_mean,
                                      self.noise, self.generator)
        return action.cpu().numpy().astype(np.float32)


class TDMPCAgent(OnlineAgent):
    """TD-MPC on the book's loop (`wmlib.loop.OnlineAgent`): TOLD and its EMA target, one
    Adam for TOLD and one for pi_theta, and per update one TOLD step, one policy step and
    (every ``update_freq`` updates) the target's EMA step; it acts by `plan`."""

    NAME = "TD-MPC"
    PUBLISHED = ("Published TD-MPC (Hansen et al. 2022), cartpole-swingup from the state: "
                 "859 at 100k and 879 at 500k environment steps (mean of 5 seeds in the "
                 "authors' released results, results/cartpole-swingup.csv of "
                 "nicklashansen/tdmpc; random before its 40k seed steps). Cited, not ours.")

    def build(self, action_size: int, obs_shape: tuple[int, ...]) -> None:
        cfg = self.cfg
        if cfg.pixels or len(obs_shape) != 1:
            raise ValueError(f"TD-MPC here learns from the proprioceptive state only "
                             f"(pixels=False, flat observations), got pixels={cfg.pixels} and "
                             f"observations {tuple(obs_shape)}.")
        self.model = TOLD(cfg, obs_shape[0], action_size).to(self.device)
        self.target = copy.deepcopy(self.model).requires_grad_(False)   # theta^-
        told = [p for n, p in self.model.named_parameters() if not n.startswith("policy.")]
        self.optim = torch.optim.Adam(told, lr=cfg.lr, eps=cfg.adam_eps)
        self.pi_optim = torch.optim.Adam(self.model.policy.parameters(), lr=cfg.lr,
                                         eps=cfg.adam_eps)
        # What the TOLD optimiser trains and clips: every network but pi_theta.
        self.told_nets = nn.ModuleList([m for n, m in self.model.named_children()
                                        if n != "policy"])
        self.updates = 0  # counts updates, for the target's schedule

    def modules(self) -> dict:
        return {"model": self.model, "target": self.target, "optim": self.optim,
                "pi_optim": self.pi_optim}

    def agent_steps(self) -> int:
        """Decisions taken so far (the transitions in the replay): the schedules' clock."""
        return self.replay.num_steps - len(self.replay)

    def make_policy(self, noise: float, seed: int) -> TDMPCPolicy:
        return TDMPCPolicy(self.model, self.cfg, noise=noise, seed=seed,
                           step=self.agent_steps())

    def update(self) -> dict:
        """One TOLD step (its gradient scaled by 1/H, norm clipped at 10, as the released
        code), one policy step on the rolled latents, and the EMA of the target."""
        cfg = self.cfg
        batch = self.replay.sample(cfg.batch_size, cfg.horizon + 1)
        loss, metrics, zs = told_loss(self.model, self.target, batch, cfg)
        step(self.optim, loss / cfg.horizon, self.told_nets, cfg.grad_clip)
        pi_loss = policy_loss(self.model, zs, cfg)
        step(self.pi_optim, pi_loss, self.model.policy, cfg.grad_clip)
        if self.updates % cfg.update_freq == 0:
            ema_update(self.target, self.model, 1.0 - cfg.tau)
        self.updates += 1
        metrics["pi_loss"] = pi_loss.detach()
        return scalars(metrics)


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, **overrides) -> TDMPCAgent:
    """Train TD-MPC headless in a profile (``python -m wmlib train tdmpc``) from the state."""
    if overrides.get("pixels"):
        raise ValueError("TD-MPC here learns from the proprioceptive state only: pixels=True "
                         "is not supported.")
    return train_agent(TDMPCAgent, CONFIGS, profile, run_dir, seed, env_id, episodes,
                       progress, device, **overrides)


__all__ = ["CONFIGS", "TOLD", "TDMPCAgent", "TDMPCConfig", "TDMPCPolicy",
           "exploration_std", "linear_schedule", "plan", "planning_horizon", "policy_loss",
           "told_loss", "train"]
