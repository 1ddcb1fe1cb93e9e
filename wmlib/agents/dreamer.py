"""Dreamer (Hafner et al. 2020, "Dream to Control", arXiv:1912.01603): behaviour learned by
backpropagating lambda-returns through the imagined trajectories of a learned world model.

Dreamer keeps PlaNet's world model (chapter 3: the conv encoder, the RSSM, the decoder and the
reward head, `wmlib.agents.planet.PlaNet`, with Dreamer's batch-mean free nats) and PlaNet's
data collection (Algorithm 1: C updates per collected episode), and replaces the planner by two
networks trained in imagination (Dreamer's Algorithm 1, lines 6-13):

* imagine ``H = 15`` steps ahead from every posterior state of the batch, with actions from the
  actor ``a_tau ~ q_phi(a | s_tau)`` (`Dreamer.imagine`);
* the lambda-return ``V_lambda(s_tau)`` of the imagined rewards and values (eq. 6,
  `wmlib.objectives.lambda_return`);
* the actor loss ``-sum_tau V_lambda(s_tau)`` (eq. 7), whose gradient flows back through the
  values, rewards and learned dynamics into the actor (`Dreamer.actor_loss`);
* the value loss ``sum_tau 1/2 (v_psi(s_tau) - sg(V_lambda(s_tau)))^2`` (eq. 8,
  `Dreamer.value_loss`);
* three optimisers, each updating only its own networks (model 6e-4, actor and value 8e-5,
  gradients clipped at norm 100).

`DreamerAgent` runs it: the book's loop, `wmlib.loop.OnlineAgent` (replay, checkpoints, resume,
evaluation, Algorithm 1's schedule), with Dreamer's networks, update and policy.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.agents.planet import PlaNet, PlaNetConfig
from wmlib.dreamerv3 import BINS, ReturnNorm, TwoHotHead, critic_ema_regulariser, ema_update
from wmlib.loop import OnlineAgent, train_agent
from wmlib.models.actor_critic import ValueNet, make_actor
from wmlib.models.rssm import State
from wmlib.nets import mlp
from wmlib.objectives import lambda_return
from wmlib.training import scalars


@dataclass(frozen=True)
class DreamerConfig(PlaNetConfig):
    """PlaNet's fields (the world model, the replay, Algorithm 1) with Dreamer's values, and the
    behaviour's. ``horizon`` is the imagination horizon H."""

    action_repeat: int | None = 2       # Dreamer: 2 for every task
    bits: int = 8                       # Dreamer's 8-bit pixels
    free_nats: float = 3.0
    kl_clamp: str = "batch"             # Dreamer clamps the batch-mean KL
    reward_scale: float = 1.0
    lr: float = 6e-4                    # the world model's learning rate
    adam_eps: float = 1e-7              # TensorFlow's Adam default, which Dreamer uses
    grad_clip: float = 100.0
    horizon: int = 15
    imagine_batch: int | None = None    # imagine from the posteriors of this many of the B
                                        # sequences only (None: all, as in Dreamer): a speed
                                        # option of the laptop profiles
    # Behaviour (Dreamer: 400 units, actor 4 layers, value 3 layers, lambda 0.95, gamma 0.99).
    units: int = 400
    actor_lr: float = 8e-5
    value_lr: float = 8e-5
    discount: float = 0.99
    lambda_: float = 0.95
    action_init_std: float = 5.0        # tanh_normal's initial std
    actor_dist: str = "tanh_normal"     # Dreamer's; DreamerV2's "trunc_normal" for DMC
    exploration_noise: float = 0.3      # additive Gaussian noise while collecting
    # DreamerV2's behaviour options (see `dreamerv2`): rho, eta and the target critic.
    actor_grad_mix: float = 0.0         # rho: weight of REINFORCE; 0 = dynamics backprop only
    actor_entropy: float = 0.0          # eta: weight of the policy's entropy
    slow_target_every: int = 0          # copy the critic into a target critic every N updates
    pred_discount: bool = False         # DreamerV2's discount predictor (for tasks that end)
    discount_scale: float = 1.0         # weight of its loss in the world model's
    # DreamerV3's behaviour options (see `dreamerv3`; the world model's are PlaNetConfig's).
    return_norm: bool = False           # divide returns by max(1, EMA of their 5-95% range)
    critic_ema: float = 0.0             # > 0: an EMA copy of the critic with this decay ...
    critic_reg: float = 1.0             # ... whose predictions regularise the critic (twohot)


# Checkpoints saved before an option existed load when it holds the old behaviour's value.
DreamerConfig.LEGACY = {**PlaNetConfig.LEGACY, "actor_dist": "tanh_normal",
                        "return_norm": False, "critic_ema": 0.0, "critic_reg": 1.0}

CONFIGS = {
    "smoke": DreamerConfig(depth=4, stoch_size=4, deter_size=16, hidden_size=16, units=16,
                           batch_size=4, chunk_length=8, seed_episodes=2, collect_interval=3,
                           episodes=2, eval_every=2, max_steps=10, horizon=4),
    # From pixels on 2 CPU cores: chapter 3's quick world model (depth 8, belief 100, state
    # 20) and its action repeat of 8 (PlaNet's for cartpole; Dreamer's 2 collapsed to a
    # constant push at this budget, see chapter 4), batch 16 x 32, imagination from 4 of the
    # 16 sequences, C = 50 updates per episode, behaviour learning rates raised from 8e-5 to
    # 4e-4 (a few thousand updates instead of Dreamer's hundreds of thousands), the reward
    # loss weighted 10 as in PlaNet's code, a 45-minute budget.
    "quick": DreamerConfig(depth=8, stoch_size=20, deter_size=100, hidden_size=100, units=100,
                           action_repeat=8, batch_size=16, chunk_length=32, imagine_batch=4,
                           collect_interval=50, episodes=150, eval_every=5, eval_episodes=2,
                           channels_last=True, free_nats=1.0, reward_scale=10.0, lr=1e-3,
                           actor_lr=4e-4, value_lr=4e-4, budget_s=45 * 60.0),
    "gpu": DreamerConfig(episodes=100, eval_every=10, eval_episodes=2, budget_s=50 * 60.0,
                         bf16=True),
    "full": DreamerConfig(episodes=1000, bf16=True),
}

# Learning from the proprioceptive state (cartpole: position, cos and sin of the angle, two
# velocities): MLP encoder and decoder, the rest as from pixels. What makes the chapter's
# ablations affordable on a laptop.
STATE_CONFIGS = {
    "smoke": dataclasses.replace(CONFIGS["smoke"], pixels=False),
    "quick": dataclasses.replace(CONFIGS["quick"], pixels=False, stoch_size=30,
                                 reward_scale=1.0, budget_s=30 * 60.0, episodes=300),
    "gpu": dataclasses.replace(CONFIGS["gpu"], pixels=False, bf16=False),
    "full": dataclasses.replace(CONFIGS["full"], pixels=False, bf16=False),
}


def configs(state: bool = False) -> dict:
    """The profiles' configurations from pixels (`CONFIGS`) or from the state."""
    return STATE_CONFIGS if state else CONFIGS


def dreamerv2(cfg: DreamerConfig, **overrides) -> DreamerConfig:
    """DreamerV2's settings for DeepMind Control (Hafner et al. 2021; danijar/dreamerv2's
    ``dmc`` configuration) on top of ``cfg``: 32 categorical latents of 32 classes, KL
    balancing 0.8 with 1 free nat on the batch mean, model learning rate 3e-4 (Adam eps 1e-5),
    entropy 1e-4, a target critic copied every 100 updates, the truncated-normal actor, and the
    actor trained by dynamics backpropagation (rho = 0; the paper's Atari setting is rho = 1,
    REINFORCE)."""
    v2 = dict(stoch_size=32, classes=32, kl_alpha=0.8, free_nats=1.0, kl_clamp="batch",
              lr=3e-4, adam_eps=1e-5, actor_entropy=1e-4, slow_target_every=100,
              actor_grad_mix=0.0, actor_dist="trunc_normal")
    return dataclasses.replace(cfg, **(v2 | overrides))


def dreamerv3(cfg: DreamerConfig, **overrides) -> DreamerConfig:
    """DreamerV3's fixed settings (Hafner et al. 2023, arXiv:2301.04104, its hyperparameter
    table; `wmlib.dreamerv3`) on top of ``cfg``'s sizes, budget and learning rates: 32 x 32
    categorical latents with 1% unimix, the KL split 0.5 dynamics / 0.1 representation with one
    free nat per step, symlog observations (from the state), two-hot rewards and values,
    returns normalised by their 5th-95th percentile range, the critic regularised towards its
    EMA (decay 0.98), LayerNorm and SiLU, entropy 3e-4, gamma 0.997, lambda 0.95, the reward
    loss at weight 1. The actor is trained by dynamics backpropagation, as in the released
    code's setting for continuous actions (``actor_grad_cont: backprop``), with DreamerV2's
    truncated normal (chapter 4's fix) in place of DreamerV3's bounded normal. The model's
    sizes and learning rates stay the profile's: the paper's are for a replay ratio of 512 and
    millions of updates, not a laptop's few thousand."""
    v3 = dict(stoch_size=32, classes=32, unimix=0.01, kl_dyn=0.5, kl_rep=0.1, free_nats=1.0,
              kl_clamp="step", kl_alpha=0.5, symlog_obs=not cfg.pixels, twohot=True,
              return_norm=True, critic_ema=0.98, critic_reg=1.0, norm=True, act="silu",
              actor_entropy=3e-4, actor_dist="trunc_normal", actor_grad_mix=0.0,
              slow_target_every=0, discount=0.997, lambda_=0.95, reward_scale=1.0)
    return dataclasses.replace(cfg, **(v3 | overrides))


PRESETS = {"dreamerv2": dreamerv2, "dreamerv3": dreamerv3}


def variant(cfg: DreamerConfig, latents: str = "gaussian", balance: bool = False,
            actor: str = "tanh_normal") -> DreamerConfig:
    """One cell of chapter 4's ablation (the question of Wan and Chen's figure 12): Dreamer's
    world model with Gaussian (30) or DreamerV2's categorical (32 x 32) latents, with or
    without KL balancing (alpha 0.8, batch-mean free nats), and Dreamer's tanh-squashed actor
    or DreamerV2's truncated normal (``actor="trunc_normal"``); everything else unchanged."""
    if latents not in ("gaussian", "categorical"):
        raise ValueError(f"latents must be 'gaussian' or 'categorical', got {latents!r}")
    sizes = dict(stoch_size=32, classes=32) if latents == "categorical" else \
        dict(stoch_size=30, classes=0)
    return dataclasses.replace(cfg, **sizes, kl_alpha=0.8 if balance else 0.5,
                               kl_clamp="batch", actor_dist=actor)


# name: (latents, KL balancing, actor). The last cell asks whether DreamerV2's actor removes
# the categorical latents' collapse to a constant push (chapter 4, section 8).
VARIANTS = {"gaussian": ("gaussian", False, "tanh_normal"),
            "gaussian+balance": ("gaussian", True, "tanh_normal"),
            "categorical": ("categorical", False, "tanh_normal"),
            "categorical+balance": ("categorical", True, "tanh_normal"),
            "categorical+trunc": ("categorical", False, "trunc_normal")}


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Let gradients flow *through* ``modules`` but not *into* their parameters (as Dreamer's
    separate gradient tapes do: the actor loss trains the actor only)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Dreamer(nn.Module):
    """The world model (`PlaNet`), the actor ``q_phi(a | s)`` and the value ``v_psi(s)``."""

    def __init__(self, cfg: DreamerConfig, action_size: int,
                 obs_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.cfg = cfg
        self.world = PlaNet(cfg, action_size, obs_shape)
        feature_size = self.world.dynamics.feature_size
        # DreamerV2's discount predictor: a Bernoulli p(gamma_t | s_t) of "the episode goes
        # on", trained with the world model; imagination discounts by gamma * its mean.
        self.discount_head = mlp(feature_size, 1, cfg.hidden_size, 2) \
            if cfg.pred_discount else None
        self.actor = make_actor(cfg.actor_dist, feature_size, action_size, cfg.units,
                                cfg.action_init_std, cfg.act, cfg.norm)
        if cfg.twohot:  # DreamerV3: a two-hot critic over symlog bins, its last layer at zero
            self.value = TwoHotHead(mlp(feature_size, BINS, cfg.units, 3, cfg.act, cfg.norm),
                                    keepdim=False)
        else:
            self.value = ValueNet(feature_size, cfg.units)
        # DreamerV2's slowly updated target critic: the lambda-returns bootstrap from it.
        self.target_value = copy.deepcopy(self.value).requires_grad_(False) \
            if cfg.slow_target_every else None
        # DreamerV3's EMA critic (regularises the critic) and return scale.
        if cfg.critic_ema and not cfg.twohot:
            raise ValueError("critic_ema regularises a two-hot critic (DreamerV3): set "
                             "twohot=True, or critic_ema=0.")
        self.value_ema = copy.deepcopy(self.value).requires_grad_(False) \
            if cfg.critic_ema else None
        self.return_norm = ReturnNorm() if cfg.return_norm else None

    def world_modules(self) -> list[nn.Module]:
        """What the world model's optimiser trains: PlaNet's networks and the discount head."""
        return [self.world] + ([self.discount_head] if self.discount_head is not None else [])

    def world_loss(self, batch: dict) -> tuple[torch.Tensor, dict, State]:
        """PlaNet's loss on a replay batch (`PlaNet.loss`), plus the discount predictor's
        negative log-likelihood of the replay's discount flags when it is on."""
        world = self.world
        obs, actions, rewards = world.prepare(batch)
        loss, metrics, posteriors = world.loss(obs, actions, rewards)
        if self.discount_head is not None:
            target = devices.to_device(batch["discount"], world._device(),
                                       torch.float32).transpose(0, 1)
            logits = self.discount_head(posteriors.features()).squeeze(-1)
            nll = nn.functional.binary_cross_entropy_with_logits(logits, target)
            loss = loss + self.cfg.discount_scale * nll
            metrics["discount_loss"] = nll.detach()
        return loss, metrics, posteriors

    def update_target(self) -> None:
        """Copy the critic into the target critic (DreamerV2: every 100 updates, fraction 1)."""
        if self.target_value is not None:
            self.target_value.load_state_dict(self.value.state_dict())

    def imagine(self, posteriors: State) -> tuple[State, torch.Tensor]:
        """Imagined trajectories of H steps from every posterior state (time and batch
        flattened into ``N = T * B`` starts, which carry no gradient): the priors ``[H, N]``
        and the actions ``[H, N, A]`` the actor sampled, ``a_tau ~ q_phi(a | sg(s_tau))``."""
        start = posteriors.detach().flatten()
        return self.world.dynamics.imagine_with_policy(
            start, lambda features: self.actor(features.detach()).rsample(), self.cfg.horizon)

    def returns(self, imagined: State) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Along the imagined states ``s_1..s_H``: the lambda-returns ``V_lambda`` of
        ``s_1..s_{H-1}`` (eq. 6, bootstrapped from ``v(s_H)``), the values ``v(s_tau)`` and the
        weights ``gamma^(tau-1)`` that discount later steps, as in Dreamer's code."""
        features = imagined.features()
        rewards = self.imagined_rewards(features)
        values = (self.target_value or self.value)(features)
        if self.discount_head is not None:  # gamma times the predicted chance to go on
            discounts = self.cfg.discount * torch.sigmoid(self.discount_head(features)
                                                          .squeeze(-1))
        else:
            discounts = torch.full_like(rewards, self.cfg.discount)
        lam = lambda_return(rewards[:-1], values[:-1], discounts[:-1], values[-1],
                            self.cfg.lambda_)
        weights = torch.cumprod(torch.cat([torch.ones_like(discounts[:1]), discounts[:-2]]), 0)
        return lam, values, weights.detach()

    def imagined_rewards(self, features: torch.Tensor) -> torch.Tensor:
        """The rewards the actor maximises along imagined features ``[H, N, F]``: the reward
        head's prediction (Soft-BIRD adds the policy's entropy, `wmlib.agents.bird`)."""
        return self.world.predict_reward(features)

    @torch.no_grad()
    def imagination_gap(self, episode: dict, horizon: int | None = None,
                        per_step: bool = False) -> dict:
        """How far imagination is from reality for the same policy (Zhu et al. 2020, section 4):
        filter a real ``episode`` (acted by the actor's mode, as in evaluation) to posteriors
        ``s_t``, imagine ``H`` steps from every ``s_t`` with the actor's mode, and compare the
        imagined reward sum ``sum_k r_hat_{t+k}`` with the real one ``sum_k r_{t+k}``,
        k = 1..H. Returns the means over t of the imagined and real H-step returns and of the
        absolute gap between them (in reward units); with ``per_step`` also the arrays of
        both sums over t (``imagined_per_step``, ``real_per_step``)."""
        world, horizon = self.world, horizon or self.cfg.horizon
        batch = {k: np.asarray(episode[k])[None] for k in ("obs", "action", "reward")}
        obs, actions, rewards = world.prepare(batch)
        T = rewards.shape[0] - horizon
        if T < 1:
            raise ValueError(f"An episode of {rewards.shape[0]} steps is too short for an "
                             f"imagination horizon of {horizon}.")
        posteriors, _ = world.dynamics.observe(world.embed(obs), actions)
        start = posteriors[:T].flatten()
        imagined, _ = world.dynamics.imagine_with_policy(start, self.actor.mode, horizon)
        imagined_sum = world.predict_reward(imagined.features()).sum(0)            # [T]
        real = rewards[:, 0].unfold(0, horizon, 1)[1:T + 1].sum(-1)                 # [T]
        gap = {"gap_imagined": imagined_sum.mean().item(), "gap_real": real.mean().item(),
               "gap_abs": (imagined_sum - real).abs().mean().item()}
        if per_step:
            gap.update(imagined_per_step=imagined_sum.cpu().numpy(),
                       real_per_step=real.cpu().numpy())
        return gap

    def actor_loss(self, posteriors: State) -> tuple[torch.Tensor, State, torch.Tensor,
                                                      torch.Tensor]:
        """Dreamer's eq. 7, ``-mean_tau gamma^tau V_lambda(s_tau)``, differentiated through the
        learned dynamics, rewards and values into the actor only; with DreamerV2's options its
        eq. 6:

            -rho log pi(sg(a_t) | sg(s_t)) sg(V_lambda(s_{t+1}) - v(s_t))     (REINFORCE)
            -(1 - rho) V_lambda(s_{t+1})                         (dynamics backpropagation)
            -eta H(pi(. | s_t))                                             (entropy),

        for the states ``s_t`` where the actions were chosen (the start and the first H - 2
        imagined states; v the target critic when there is one). The entropy of the squashed
        Gaussian has no closed form: ``-log pi(a)`` of a reparameterized sample estimates it.
        Returns the loss, the imagined states, their lambda-returns and weights."""
        cfg = self.cfg
        with frozen(*self.world_modules(), self.value):
            imagined, actions = self.imagine(posteriors)
            lam, _, weights = self.returns(imagined)
        # DreamerV3: returns and advantages divided by max(1, S), S the EMA percentile range
        scale = self.return_norm.update(lam) if self.return_norm is not None else 1.0
        objective = (1 - cfg.actor_grad_mix) * lam / scale
        if cfg.actor_grad_mix or cfg.actor_entropy:
            start = posteriors.detach().flatten()
            chosen_in = State.stack([start] + [imagined[k] for k in range(len(lam) - 1)])
            features = chosen_in.features().detach()
            policy = self.actor(features)
            if cfg.actor_grad_mix:
                with torch.no_grad():
                    baseline = (self.target_value or self.value)(features)
                advantage = ((lam - baseline) / scale).detach()
                taken = actions[:-1].detach().clamp(-1 + 1e-6, 1 - 1e-6)  # finite atanh
                objective = objective + cfg.actor_grad_mix * policy.log_prob(taken) * advantage
            if cfg.actor_entropy:
                objective = objective - cfg.actor_entropy * policy.log_prob(policy.rsample())
        return -(weights * objective).mean(), imagined, lam, weights

    def value_loss(self, imagined: State, lam: torch.Tensor,
                   weights: torch.Tensor) -> torch.Tensor:
        """Eq. 8: ``mean_tau gamma^tau 1/2 (v_psi(s_tau) - sg(V_lambda(s_tau)))^2`` on the
        imagined states (detached: the value loss trains the value network only). With
        ``twohot``, DreamerV3's ``-log p_psi(sg(V_lambda) | s_tau)``, plus with ``critic_ema``
        the regulariser ``-critic_reg log p_psi(v_ema(s_tau) | s_tau)``."""
        features = imagined.features().detach()[:-1]
        if not self.cfg.twohot:
            values = self.value(features)
            return (weights * 0.5 * (values - lam.detach()) ** 2).mean()
        dist = self.value.dist(features)
        nll = -dist.log_prob(lam.detach())
        if self.value_ema is not None:
            with torch.no_grad():
                ema = self.value_ema(features)
            nll = nll + self.cfg.critic_reg * critic_ema_regulariser(dist, ema)
        return (weights * nll).mean()


class DreamerPolicy:
    """Filter the belief with each observation, then act with the actor: a sample plus
    Gaussian exploration noise while collecting, the mode when evaluating (``noise = 0``)."""

    def __init__(self, model: Dreamer, noise: float = 0.0, seed: int = 0):
        self.model, self.noise = model, noise
        self.device = next(model.parameters()).device
        self.generator = devices.generator(self.device, seed)
        self.reset()

    def reset(self) -> None:
        self.state = self.model.world.dynamics.initial(1)
        self.prev_action = torch.zeros(1, self.model.world.action_size, device=self.device)

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        world = self.model.world
        embed = world.embed(world.preprocess(obs, noise=False)[None])
        self.state, _ = world.dynamics.obs_step(self.state, self.prev_action, embed)
        features = self.state.features()
        if self.noise:
            action = self.model.actor(features).sample()
            noise = torch.randn(action.shape, device=self.device, generator=self.generator)
            action = (action + self.noise * noise).clamp(-1, 1)
        else:
            action = self.model.actor.mode(features)
        self.prev_action = action
        return action[0].cpu().numpy().astype(np.float32)


class DreamerAgent(OnlineAgent):
    """Dreamer's Algorithm 1 on the book's loop (`wmlib.loop`): replay on disk, checkpoints and
    resume, S seed episodes, then rounds of C updates and one collected episode."""

    NAME = "Dreamer"
    MODEL = Dreamer  # the networks `build` makes (BIRD's subclass adds its terms)
    PUBLISHED = ("Published Dreamer (Hafner et al. 2020), cartpole-swingup from pixels: 326 at "
                 "100k and 762 at 500k environment steps in PlaNet's setting (as reported in the "
                 "CURL paper); 869 final (authors' score files). Cited, not ours.")

    def build(self, action_size: int, obs_shape: tuple[int, ...] | None = None) -> None:
        cfg = self.cfg
        self.dreamer = self.MODEL(cfg, action_size, obs_shape).to(self.device)
        self.model = self.dreamer.world  # what the loop calls the world model
        adam = lambda module, lr: torch.optim.Adam(module.parameters(), lr=lr,  # noqa: E731
                                                   eps=cfg.adam_eps)
        self.optim = adam(nn.ModuleList(self.dreamer.world_modules()), cfg.lr)
        self.actor_optim = adam(self.dreamer.actor, cfg.actor_lr)
        self.value_optim = adam(self.dreamer.value, cfg.value_lr)
        self.updates = 0  # counts updates, for the target critic's schedule

    def modules(self) -> dict:
        return {"dreamer": self.dreamer, "optim": self.optim, "actor_optim": self.actor_optim,
                "value_optim": self.value_optim}

    def make_policy(self, noise: float, seed: int) -> DreamerPolicy:
        return DreamerPolicy(self.dreamer, noise=noise, seed=seed)

    def eval_metrics(self) -> dict:
        """The imagination gap (`Dreamer.imagination_gap`) on the first evaluation episode."""
        episodes = getattr(self, "eval_episodes", [])
        if not episodes or len(episodes[0]["reward"]) <= self.cfg.horizon + 1:
            return {}
        self.dreamer.eval()
        try:
            return self.dreamer.imagination_gap(episodes[0])
        finally:
            self.dreamer.train()

    def update(self) -> dict:
        """One step of the world model, the actor and the value, each with its optimiser."""
        cfg, d = self.cfg, self.dreamer
        batch = self.replay.sample(cfg.batch_size, cfg.chunk_length)
        model_loss, metrics, posteriors = d.world_loss(batch)
        step(self.optim, model_loss, nn.ModuleList(d.world_modules()), cfg.grad_clip)
        if cfg.imagine_batch:  # the batch's sequences are random: the first ones are a sample
            posteriors = posteriors.map(lambda x: x[:, :cfg.imagine_batch])
        actor_loss, imagined, lam, weights = d.actor_loss(posteriors)
        step(self.actor_optim, actor_loss, d.actor, cfg.grad_clip)
        value_loss = d.value_loss(imagined, lam, weights)
        step(self.value_optim, value_loss, d.value, cfg.grad_clip)
        self.updates += 1
        if cfg.slow_target_every and self.updates % cfg.slow_target_every == 0:
            d.update_target()
        if d.value_ema is not None:
            ema_update(d.value_ema, d.value, cfg.critic_ema)
        metrics.update(actor_loss=actor_loss.detach(), value_loss=value_loss.detach(),
                       imagined_return=lam[0].mean().detach())
        return scalars(metrics)


def step(optim: torch.optim.Optimizer, loss: torch.Tensor, module: nn.Module,
         clip: float) -> None:
    """A gradient step of ``optim`` on ``loss`` with the gradient norm of ``module`` clipped."""
    optim.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(module.parameters(), clip)
    optim.step()


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, state: bool = False, ablation: str | None = None,
          preset: str | None = None, **overrides) -> DreamerAgent:
    """Train Dreamer headless in a profile (``python -m wmlib train dreamer``): from pixels,
    or from the proprioceptive state with ``state=True``; ``ablation`` names a cell of
    `VARIANTS` (latents and KL balancing), ``preset`` one of `PRESETS` (``dreamerv2``,
    ``dreamerv3``) applied to the profile's configuration."""
    table = configs(state)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {list(PRESETS)}.")
        table = {k: PRESETS[preset](v) for k, v in table.items()}
    if ablation is not None:
        if ablation not in VARIANTS:
            raise ValueError(f"Unknown ablation {ablation!r}; choose one of {list(VARIANTS)}.")
        table = {k: variant(v, *VARIANTS[ablation]) for k, v in table.items()}
    return train_agent(DreamerAgent, table, profile, run_dir, seed, env_id, episodes,
                       progress, device, **overrides)


__all__ = ["CONFIGS", "PRESETS", "STATE_CONFIGS", "VARIANTS", "Dreamer", "DreamerAgent",
           "DreamerConfig", "DreamerPolicy", "configs", "dreamerv2", "dreamerv3", "train",
           "variant"]
