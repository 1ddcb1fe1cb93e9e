"""PlaNet, the Deep Planning Network (Hafner et al. 2019): a latent dynamics model learned from
pixels, and model-predictive control by CEM in its latent space.

The pieces (equation numbers of the PlaNet paper, arXiv:1811.04551, as in `wmlib.models.rssm`
and `wmlib.objectives`):

* `PlaNet`: the conv encoder, `LatentDynamics` (RNN, SSM or RSSM), the conv decoder
  ``p(o_t | s_t)`` and the reward head ``p(r_t | s_t)``; `PlaNet.loss` is the negative ELBO of
  eq. (3) with free nats plus the reward loss, and optionally latent overshooting, eq. (7);
* `PlaNet.plan`: CEM over action sequences, evaluated by rolling the prior forward from the
  current belief and summing the predicted rewards (PlaNet's Algorithm 2);
* `PlaNetPolicy`: filters the belief ``q(s_t | o_<=t, a_<t)`` online and plans from it, with
  Gaussian exploration noise while collecting;
* `train`: PlaNet's Algorithm 1 (also in Fieldman and Gordon's 2022 reproduction): S seed
  episodes, then C updates per collected episode, evaluation episodes, checkpoints and resume
  (the replay lives on disk in the run directory, so a resumed run has its data).

Everything is time-major inside (``[T, B, ...]``); replay chunks ``[B, T, ...]`` are transposed
once in `PlaNet.prepare`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.models.rssm import LatentDynamics, State
from wmlib.nets import ConvDecoder, ConvEncoder, mlp
from wmlib.objectives import (
    kl_balance,
    kl_loss,
    latent_overshooting,
    observation_overshooting,
    overshooting_priors,
    reconstruction_loss,
    reward_loss,
)
from wmlib.planners import cem_plan
from wmlib.training import History, scalars

OBS_SHAPE = (3, 64, 64)


@dataclass(frozen=True)
class PlaNetConfig:
    """Everything that defines a PlaNet run; `CONFIGS` holds one per profile."""

    env_id: str = "dmc:cartpole-swingup"
    pixels: bool = True                 # False: the proprioceptive state, with MLP encoder and
                                        # decoder in place of the convolutions (chapter 4)
    action_repeat: int | None = None    # None: PlaNet's per-domain repeat (cartpole 8, ...)
    # World model (PlaNet: conv depth 32, belief 200, state 30, hidden 200, min std 0.1).
    kind: str = "rssm"
    depth: int = 32
    stoch_size: int = 30                # Gaussian: its size; categorical: the variables V
    classes: int = 0                    # 0: Gaussian latents; C: DreamerV2's V x C categoricals
    deter_size: int = 200
    hidden_size: int = 200
    min_std: float = 0.1
    bits: int = 5                       # PlaNet's 5-bit pixels with dequantisation noise
                                        # (8: Dreamer's 8-bit pixels, no noise)
    # Loss (eq. 16 with free nats; overshooting eq. 29 when overshooting >= 2). See `PlaNet.loss`.
    free_nats: float = 3.0
    kl_clamp: str = "step"              # "step": PlaNet clamps each step's KL at free nats;
                                        # "batch": Dreamer clamps the batch mean
    kl_alpha: float = 0.5               # DreamerV2's KL balancing (0.8); 0.5 is the plain KL
    reward_scale: float = 10.0          # weight of the reward loss (PlaNet's code: 10)
    obs_norm: bool = False              # states: standardise each dimension (`PlaNet.prepare`)
    overshooting: int = 0               # distance D of overshooting (0 or 1: off)
    overshooting_beta: float = 1.0      # weight of the mean d-step KL, d = 2..D (see loss)
    overshooting_reward: float = 0.0    # weight of the mean d-step reward loss, d = 1..D
    # Optimisation (PlaNet: batch 50 x 50, Adam 1e-3, eps 1e-4, clip 1000).
    batch_size: int = 50
    chunk_length: int = 50
    lr: float = 1e-3
    adam_eps: float = 1e-4
    grad_clip: float = 1000.0
    # Speed options (measured in benchmarks/bench_ch03.py; the defaults per profile are below).
    bf16: bool = False                  # bf16 autocast of the conv encoder/decoder (CPU, and
                                        # GPUs with bf16; float32 elsewhere)
    channels_last: bool = False         # NHWC convolutions (faster with oneDNN on CPUs)
    plan_bf16: bool = False             # CEM's latent rollouts in a bfloat16 copy of the
                                        # dynamics and reward head (where bf16 is native)
    decoder_matmul: bool = False        # the decoder's 1x1 first layer as one matrix product
    compile: bool = False               # torch.compile the reconstruction loss and CEM's
                                        # rollout (eager, with a warning, where unavailable)
    # Algorithm 1 (PlaNet: S = 5 seed episodes, C = 100 updates per episode, noise 0.3).
    seed_episodes: int = 5
    collect_interval: int = 100
    episodes: int = 1000                # collected episodes after the seed episodes
    exploration_noise: float = 0.3
    eval_every: int = 10                # evaluate every this many collected episodes
    eval_episodes: int = 1
    max_steps: int | None = None        # cut episodes short (smoke profile only)
    replay_capacity: int = 1_000_000
    budget_s: float | None = None       # stop (checkpointed, resumable) after this wall time
    # CEM in latent space (PlaNet: H = 12, J = 1000, K = 100, I = 10).
    horizon: int = 12
    candidates: int = 1000
    top_k: int = 100
    iterations: int = 10


# Options added after the first recorded runs, with the values those runs had implicitly:
# a checkpoint saved before an option existed still loads when the option holds this value.
PlaNetConfig.LEGACY = {"pixels": True, "classes": 0, "kl_clamp": "step", "kl_alpha": 0.5,
                       "decoder_matmul": False, "compile": False, "obs_norm": False}

# The speed options at PlaNet's size (benchmarks/bench_ch03.py, 2-core CPUs: update 2.4-2.6x
# and CEM 2.5x faster than the plain float32 path with AVX-512 BF16, 3.3-3.7x and 2.6-2.7x with
# AMX); the bf16 options are no-ops where bf16 is not native, compile where compilation is
# unavailable.
FAST = dict(bf16=True, channels_last=True, plan_bf16=True, decoder_matmul=True, compile=True)

CONFIGS = {
    "smoke": PlaNetConfig(depth=4, stoch_size=4, deter_size=16, hidden_size=16, batch_size=4,
                          chunk_length=8, seed_episodes=2, collect_interval=3, episodes=2,
                          eval_every=2, max_steps=10, horizon=4, candidates=20, top_k=4,
                          iterations=2),
    # quick: every speed option but plan_bf16, which at this size (J = 200 candidates, belief
    # 100) makes CEM slower, not faster (measured on a 2-core CPU with AMX: 22.3 against
    # 20.1 ms per action with compile; benchmarks/bench_ch03.py).
    "quick": PlaNetConfig(depth=8, stoch_size=20, deter_size=100, hidden_size=100,
                          **(FAST | {"plan_bf16": False}),
                          free_nats=1.0, reward_scale=100.0, overshooting=12,
                          overshooting_beta=0.0, overshooting_reward=100.0,
                          batch_size=16, chunk_length=32, collect_interval=50, episodes=50,
                          eval_every=5, eval_episodes=2, candidates=200, top_k=20,
                          iterations=5),
    # One Colab session on a T4-class GPU: the paper's model, batch and planner, 100 updates
    # per episode, and a 50-minute budget on training (an estimate until measured on a GPU;
    # the budget keeps the automatic profile inside the session whatever the GPU).
    # bf16 autocast of the convolutions, where the GPU has bf16 (Ampere and later; a T4 runs
    # float32): mixed precision, the usual lever for a convolution-bound update on a GPU.
    "gpu": PlaNetConfig(episodes=100, eval_every=10, eval_episodes=2, budget_s=50 * 60.0,
                        **FAST),
    "full": PlaNetConfig(**FAST),
}


def _check_obs(obs: torch.Tensor, shape: tuple[int, ...] = OBS_SHAPE) -> None:
    if tuple(obs.shape[obs.dim() - len(shape):]) != tuple(shape):
        if tuple(shape) == OBS_SHAPE:
            raise ValueError(
                f"PlaNet expects pixel observations of shape (..., 3, 64, 64), got "
                f"{tuple(obs.shape)}; make the environment with wmlib.envs.make(env_id, "
                "pixels=True, size=64) (channels first, uint8).")
        raise ValueError(
            f"This model was built for state observations of shape (..., {shape[0]}), got "
            f"{tuple(obs.shape)}; make the environment with wmlib.envs.make(env_id, "
            "pixels=False), the one the model was built for.")


def _obs_shape(cfg: PlaNetConfig, obs_shape) -> tuple[int, ...]:
    if cfg.pixels:
        if obs_shape is not None and tuple(obs_shape) != OBS_SHAPE:
            raise ValueError(f"A pixel model (pixels=True) takes observations {OBS_SHAPE}, not "
                             f"{tuple(obs_shape)}; set pixels=False for state observations.")
        return OBS_SHAPE
    if obs_shape is None or len(obs_shape) != 1:
        raise ValueError(f"A state model (pixels=False) needs the flat state's shape (D,), got "
                         f"{obs_shape}; pass obs_shape=env.observation_space.shape.")
    return tuple(obs_shape)


class PlaNet(nn.Module):
    """Encoder, latent dynamics, decoder and reward head of PlaNet, with its loss and planner."""

    def __init__(self, cfg: PlaNetConfig, action_size: int,
                 obs_shape: tuple[int, ...] | None = None):
        """``obs_shape``: ``(3, 64, 64)`` with ``cfg.pixels`` (the default), the state's
        ``(D,)`` without: then an MLP embeds the state and another predicts it back."""
        super().__init__()
        if cfg.kl_clamp not in ("step", "batch"):
            raise ValueError(f"kl_clamp must be 'step' (PlaNet) or 'batch' (Dreamer), got "
                             f"{cfg.kl_clamp!r}")
        if cfg.kl_clamp == "step" and cfg.kl_alpha != 0.5:
            raise ValueError("KL balancing (kl_alpha != 0.5) clamps the batch-mean KL, as "
                             "DreamerV2 does: set kl_clamp='batch'.")
        self.cfg = cfg
        self.action_size = action_size
        self.obs_shape = _obs_shape(cfg, obs_shape)
        if cfg.pixels:
            self.encoder = ConvEncoder(cfg.depth, channels_last=cfg.channels_last)
            embed_dim = self.encoder.embed_dim
        else:  # proprioceptive state: an MLP encoder of the state and an MLP decoder
            embed_dim = cfg.hidden_size
            self.encoder = mlp(self.obs_shape[0], embed_dim, cfg.hidden_size, 2)
        self.dynamics = LatentDynamics(action_size, embed_dim, cfg.kind,
                                       cfg.stoch_size, cfg.deter_size, cfg.hidden_size,
                                       cfg.min_std, classes=cfg.classes)
        if cfg.pixels:
            self.decoder = ConvDecoder(self.dynamics.feature_size, cfg.depth,
                                       channels_last=cfg.channels_last,
                                       first_matmul=cfg.decoder_matmul)
        else:
            self.decoder = mlp(self.dynamics.feature_size, self.obs_shape[0], cfg.hidden_size, 2)
        self.reward = mlp(self.dynamics.feature_size, 1, cfg.hidden_size, 2)
        if cfg.pixels and cfg.channels_last:
            self.encoder.to(memory_format=torch.channels_last)
            self.decoder.to(memory_format=torch.channels_last)
        if cfg.obs_norm and not cfg.pixels:  # per-dimension mean and std of the states
            D = self.obs_shape[0]
            self.register_buffer("obs_loc", torch.zeros(D))
            self.register_buffer("obs_scale", torch.ones(D))
            self.register_buffer("obs_stats_set", torch.tensor(False))
        # reconstruction_loss and rollout_returns, compiled on first use with cfg.compile
        self._recon_fn = self._rollout_fn = None

    def _reconstruction_loss(self, mean, target) -> torch.Tensor:
        """`wmlib.objectives.reconstruction_loss` of a 30-million-pixel batch: with
        ``cfg.compile`` one fused kernel forward and one backward instead of several passes
        (measured alone on a 2-core CPU: 218 ms eager, 26 ms compiled, for a bf16 decoder
        output of 50 x 50 frames)."""
        if self._recon_fn is None:
            self._recon_fn = devices.compiled(reconstruction_loss, self._device(),
                                              self.cfg.compile and self.cfg.pixels)
        return self._recon_fn(mean, target, len(self.obs_shape))

    # -- the model -----------------------------------------------------------------------
    def _autocast(self):
        return devices.autocast(self._device(), self.cfg.bf16)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """Preprocessed images ``[..., 3, 64, 64]`` (or states ``[..., D]``) -> embeddings
        ``[..., E]`` (float32)."""
        _check_obs(obs, self.obs_shape)
        if not self.cfg.pixels:
            return self.encoder(obs)
        with self._autocast():
            return self.encoder(obs).float()

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``[..., F]`` -> the mean image ``[..., 3, 64, 64]`` (or state ``[..., D]``,
        float32), in the space of `preprocess`'s output (`postprocess` maps a state back to
        the environment's units)."""
        if not self.cfg.pixels:
            return self.decoder(features)
        with self._autocast():
            return self.decoder(features).float()

    def predict_reward(self, features: torch.Tensor) -> torch.Tensor:
        return self.reward(features).squeeze(-1)

    def preprocess(self, obs, noise: bool = True) -> torch.Tensor:
        """uint8 pixels (any leading dims) -> floats in [-0.5, 0.5] with 5-bit quantisation;
        states -> float32, standardised per dimension with ``cfg.obs_norm``."""
        from wmlib.envs import preprocess

        if not self.cfg.pixels:
            x = devices.to_device(obs, self._device(), torch.float32)
            _check_obs(x, self.obs_shape)
            return (x - self.obs_loc) / self.obs_scale if self.cfg.obs_norm else x
        x = devices.to_device(obs, self._device())  # uint8 over the bus, converted on the device
        _check_obs(x)
        return preprocess(x, bits=self.cfg.bits, noise=noise and self.cfg.bits < 8)

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """A state in the model's space (`preprocess`'s output, `decode`'s) -> the
        environment's units (the identity without ``cfg.obs_norm``, and for pixels)."""
        if self.cfg.pixels or not self.cfg.obs_norm:
            return x
        return x * self.obs_scale + self.obs_loc

    @torch.no_grad()
    def set_obs_stats(self, obs) -> None:
        """With ``cfg.obs_norm``: the mean and standard deviation (floored at 1e-3) of each
        state dimension over ``obs`` ``[..., D]``, kept in the model's buffers (and so in its
        checkpoints). Without it, a state whose dimensions differ in scale by orders of
        magnitude (reacher: an unbounded shoulder angle with std ~20 beside a finger-to-target
        vector with std ~0.1) is reconstructed almost only by its large dimensions, and the
        latent need not encode the small ones, even when the reward depends on them."""
        x = devices.to_device(obs, self._device(), torch.float32).reshape(-1, self.obs_shape[0])
        self.obs_loc.copy_(x.mean(0))
        self.obs_scale.copy_(x.std(0).clamp_min(1e-3))
        self.obs_stats_set.fill_(True)

    def prepare(self, batch: dict[str, np.ndarray]) -> tuple[torch.Tensor, ...]:
        """A replay batch ``[B, T, ...]`` -> time-major ``(obs, actions, rewards)``. With
        ``cfg.obs_norm``, the first batch (from the seed episodes) sets the state statistics.

        Replay's alignment is already the model's: ``action[t]`` led to ``obs[t]``, and
        ``reward[t]`` was received on that transition.
        """
        if self.cfg.obs_norm and not self.cfg.pixels and not self.obs_stats_set:
            self.set_obs_stats(batch["obs"])
        obs = self.preprocess(batch["obs"]).transpose(0, 1)
        dev = self._device()
        actions = devices.to_device(batch["action"], dev, torch.float32).transpose(0, 1)
        rewards = devices.to_device(batch["reward"], dev, torch.float32).transpose(0, 1)
        return obs, actions, rewards

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def loss(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
             overshooting: int | None = None, beta: float | None = None
             ) -> tuple[torch.Tensor, dict, State]:
        """PlaNet's loss on time-major ``obs [T, B, 3, 64, 64]``, ``actions [T, B, A]``,
        ``rewards [T, B]``. Returns ``(loss, metrics, posteriors)``; the metrics are detached
        scalar tensors (`wmlib.training.scalars` reads them with one device sync).

        * The negative ELBO of PlaNet's eq. (3), the one-step bound: reconstruction, plus the
          one-step KL with free nats (`wmlib.objectives.kl_loss`, clamped per step as PlaNet
          does; with ``kl_clamp="batch"`` the batch mean is clamped as in Dreamer, and
          ``kl_alpha`` balances it as in DreamerV2, `wmlib.objectives.kl_balance`), plus the
          reward loss times
          ``reward_scale``. The paper writes the reward term with weight 1; PlaNet's released
          code (``configs.py``) weights it by 10: one scalar against 12,288 pixel terms is
          otherwise learned very slowly.
        * With ``overshooting = D >= 2`` and ``overshooting_reward > 0``, *reward overshooting*:
          the reward loss of the d-step open-loop priors for d = 1..D, averaged, times
          ``overshooting_reward``. It trains exactly what CEM sums, the reward along an
          open-loop rollout (`wmlib.objectives.observation_overshooting` with the reward head as
          decoder). Not in the PlaNet paper's final agent: an earlier configuration of its code
          weighted it 100 (from d = 2), the camera-ready one set it to 0; the book's quick
          profile uses it because chapter 3's offline measurement found it helps at that budget.
        * With ``overshooting = D >= 2`` (and a stochastic state), latent overshooting, eq. (7):
          the d-step KL terms ``KL(sg(q(s_t)) || p(s_t | s_{t-d}))`` for d = 2..D, the posterior
          a stop-gradient target (PlaNet, Section 4; Fieldman and Gordon 2022). We pick eq. (7)'s
          free weights as ``beta_1 = D`` and ``beta_d = beta * D / (D - 1)``, so that the total is
          ``KL_1 + beta * mean_{d=2..D} KL_d``: the one-step term keeps the weight it has in the
          ELBO (with ``beta_d = 1`` for all d, the 1/D average would shrink the only term that
          regularises the posterior to 1/D of its ELBO weight), and D = 1 is the plain ELBO.
          ``beta = 0`` turns the KL part off (reward overshooting alone).
        * The RNN has no stochastic state and no KL; its open-loop step (zeros in place of the
          observation) is trained by observation overshooting (``L_OS-MSE`` of Fieldman and
          Gordon 2022) over d = 1..D, with D = max(overshooting, 1).
        """
        cfg = self.cfg
        D = cfg.overshooting if overshooting is None else overshooting
        beta = cfg.overshooting_beta if beta is None else beta
        posteriors, priors = self.dynamics.observe(self.embed(obs), actions)
        features = posteriors.features()
        recon = self._reconstruction_loss(self.decode(features), obs)
        rew = reward_loss(self.predict_reward(features), rewards)
        metrics = {}
        total = recon + cfg.reward_scale * rew
        # The open-loop priors d = 1..D, rolled once and shared by the overshooting terms.
        over_priors = (list(overshooting_priors(self.dynamics, posteriors, actions, D))
                       if D >= 2 else None)
        if self.dynamics.stoch_size:
            if cfg.kl_clamp == "step" and cfg.kl_alpha == 0.5:
                kl = kl_loss(posteriors, priors, cfg.free_nats)
            else:  # Dreamer's clamp of the mean KL, with DreamerV2's balance where alpha != 0.5
                kl = kl_balance(posteriors, priors, cfg.kl_alpha, cfg.free_nats)
            metrics["kl"] = kl.detach()
            if D >= 2 and beta:
                betas = [0.0] + [beta * D / (D - 1)] * (D - 1)
                over = latent_overshooting(self.dynamics, posteriors, actions, D, betas,
                                           cfg.free_nats, priors=over_priors)
                metrics["overshooting"] = over.detach()
                kl = kl + over
        else:
            kl = observation_overshooting(self.dynamics, self.decode, posteriors, actions, obs,
                                          max(D, 1), priors=over_priors)
            metrics["open_loop_recon"] = kl.detach()
        total = total + kl
        if D >= 2 and cfg.overshooting_reward:
            over_rew = observation_overshooting(self.dynamics, self.predict_reward, posteriors,
                                                actions, rewards, D, event_dims=0,
                                                priors=over_priors)
            metrics["reward_overshooting"] = over_rew.detach()
            total = total + cfg.overshooting_reward * over_rew
        metrics = {"loss": total.detach(), "recon": recon.detach(), "reward_loss": rew.detach(),
                   **metrics}
        return total, metrics, posteriors

    # -- planning ------------------------------------------------------------------------
    @torch.no_grad()
    def returns(self, state: State, actions: torch.Tensor) -> torch.Tensor:
        """Predicted returns of action sequences ``[J, H, A]`` from one belief ``state`` ([1]).

        The prior is rolled open-loop (a sample path of PlaNet's eq. (5)) from the state
        expanded to J candidates, and the reward head's means are summed over the horizon:
        ``[J]``.
        """
        J = actions.shape[0]
        dynamics, reward, dtype = self._planning_nets()
        start = state.map(lambda x: x.expand(J, *x.shape[1:]).to(dtype))
        if self._rollout_fn is None:
            self._rollout_fn = devices.compiled(rollout_returns, self._device(), self.cfg.compile)
        return self._rollout_fn(dynamics, reward, start, actions.transpose(0, 1).to(dtype))

    def _planning_nets(self) -> tuple[nn.Module, nn.Module, torch.dtype]:
        """The dynamics and reward head that CEM rolls out: the model's own, or with
        ``plan_bf16`` (where the device has native bf16) a bfloat16 copy of them, refreshed from
        the model's weights at every call (a copy, not autocast: no casts inside the 120 steps
        of a plan; measured in benchmarks/bench_ch03.py)."""
        if not (self.cfg.plan_bf16 and devices.bf16_supported(self._device())):
            return self.dynamics, self.reward, torch.float32
        twin = self.__dict__.get("_bf16_twin")  # kept out of the module tree and state_dict
        if twin is None or next(twin.parameters()).device != self._device():
            twin = nn.ModuleList([self.dynamics, self.reward])
            twin = copy.deepcopy(twin).to(torch.bfloat16).requires_grad_(False)
            self.__dict__["_bf16_twin"] = twin
        for mine, theirs in zip(twin.parameters(),
                                (*self.dynamics.parameters(), *self.reward.parameters())):
            mine.copy_(theirs)
        return twin[0], twin[1], torch.bfloat16

    @torch.no_grad()
    def plan(self, state: State, generator: torch.Generator | None = None,
             trace: list | None = None, **overrides) -> torch.Tensor:
        """CEM in latent space from the belief ``state`` ([1]): the mean of the first action."""
        cfg = self.cfg
        kw = dict(horizon=cfg.horizon, candidates=cfg.candidates, top_k=cfg.top_k,
                  iterations=cfg.iterations) | overrides
        return cem_plan(lambda a: self.returns(state, a), action_dim=self.action_size,
                        device=self._device(), generator=generator, trace=trace, **kw)


def rollout_returns(dynamics: LatentDynamics, reward: nn.Module, start: State,
                    actions: torch.Tensor) -> torch.Tensor:
    """The returns CEM ranks: roll the prior open-loop from ``start`` ([J]) under ``actions``
    ([H, J, A]) and sum the reward head's means over the horizon, ``[J]`` in float32."""
    imagined = dynamics.imagine(actions, start)
    return reward(imagined.features()).squeeze(-1).float().sum(0)


class PlaNetPolicy:
    """MPC with PlaNet: update the belief with each observation, plan, add exploration noise.

    Call `reset` at the start of every episode. ``act(obs)`` takes the environment's uint8
    observation and returns a NumPy action; ``self.state`` is the current posterior belief.
    """

    def __init__(self, model: PlaNet, noise: float = 0.0, seed: int = 0,
                 low: float = -1.0, high: float = 1.0):
        self.model, self.noise, self.low, self.high = model, noise, low, high
        self.generator = devices.generator(model._device(), seed)
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        self.state = self.model.dynamics.initial(1)
        self.prev_action = torch.zeros(1, self.model.action_size, device=self.model._device())

    @torch.no_grad()
    def __call__(self, obs) -> np.ndarray:
        model = self.model
        embed = model.embed(model.preprocess(obs)[None])
        self.state, _ = model.dynamics.obs_step(self.state, self.prev_action, embed)
        action = model.plan(self.state, self.generator).cpu().numpy()
        if self.noise:
            action = action + self.noise * self.rng.standard_normal(action.shape)
        action = np.clip(action, self.low, self.high).astype(np.float32)
        self.prev_action = torch.as_tensor(action, device=model._device())[None]
        return action


# -- Algorithm 1 ---------------------------------------------------------------------------
class PlaNetAgent:
    """PlaNet's model, optimiser, replay and history, and Algorithm 1 around them.

    With a ``run_dir`` the replay is kept on disk in ``run_dir/replay`` and the model, optimiser
    and history in ``run_dir/checkpoint.pt``: `train` resumes where an interrupted run stopped,
    and refuses a run directory trained under another configuration.
    """

    NAME = "PlaNet"
    PUBLISHED = ("Published PlaNet (Hafner et al. 2019, Table 1): 821 on cartpole-swingup after "
                 "1000 episodes; about 300 at 100k environment steps (CURL/DrQ papers). Cited, "
                 "not ours.")

    def __init__(self, cfg: PlaNetConfig, env=None, run_dir: str | Path | None = None,
                 seed: int = 0, device=None):
        from wmlib import envs
        from wmlib.replay import Replay

        self.cfg, self.seed = cfg, seed
        self.env = env if env is not None else envs.make(cfg.env_id, pixels=cfg.pixels, size=64,
                                                         action_repeat=cfg.action_repeat)
        shape = tuple(self.env.observation_space.shape)
        if cfg.pixels and shape != OBS_SHAPE:
            raise ValueError(f"PlaNet needs 64x64 pixel observations (3, 64, 64), but "
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
        self._log_file = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.json").write_text(
                json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")

    def build(self, action_size: int, obs_shape: tuple[int, ...] = OBS_SHAPE) -> None:
        """The networks and optimisers (an agent built on this loop, like Dreamer, overrides
        `build`, `modules`, `update` and `make_policy`)."""
        self.model = PlaNet(self.cfg, action_size, obs_shape).to(self.device)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr,
                                      eps=self.cfg.adam_eps)

    def make_policy(self, noise: float, seed: int):
        """The policy that acts in the environment: MPC with latent CEM."""
        return PlaNetPolicy(self.model, noise=noise, seed=seed)

    # -- bookkeeping ---------------------------------------------------------------------
    def modules(self) -> dict:
        """Everything a checkpoint holds (networks and optimisers)."""
        return {"model": self.model, "optim": self.optim}

    def log(self, line: str, echo: bool = True) -> None:
        self.log_lines.append(line)
        if self.run_dir is not None:
            with open(self.run_dir / "log.txt", "a") as f:
                f.write(line + "\n")
        if echo:
            print(line, flush=True)

    def save_replay(self) -> None:
        if self.run_dir is not None:
            self.replay.save(self.run_dir / "replay")

    def load(self, path: str | Path | None = None) -> dict:
        """Load a checkpoint (default ``run_dir/checkpoint.pt``); refuses other configs."""
        from wmlib.training import load_checkpoint

        path = Path(path) if path else self.run_dir / "checkpoint.pt"
        return load_checkpoint(path, self.cfg, self.modules(), self.history,
                               map_location=self.device)

    def save(self, path: str | Path, step: int) -> None:
        from wmlib.training import save_checkpoint

        save_checkpoint(path, self.cfg, step, self.modules(), self.history)

    # -- the pieces of Algorithm 1 ---------------------------------------------------------
    def update(self) -> dict:
        """One gradient step on a batch of B chunks of length L (Algorithm 1, lines 4-6)."""
        cfg = self.cfg
        batch = self.replay.sample(cfg.batch_size, cfg.chunk_length)
        loss, metrics, _ = self.model.loss(*self.model.prepare(batch))
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optim.step()
        return scalars(metrics)

    def collect(self, policy: Callable | None, seed: int, desc: str = "collect"):
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
        """Returns of ``episodes`` episodes planned without exploration noise (not stored)."""
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

    def eval_metrics(self) -> dict:
        """More measurements on the episodes of the last evaluation (``self.eval_episodes``),
        logged with ``eval_return``; none for PlaNet (Dreamer adds the imagination gap)."""
        return {}

    # -- Algorithm 1 -----------------------------------------------------------------------
    def train(self, episodes: int | None = None, progress: bool = True,
              echo: bool = True) -> History:
        """PlaNet's Algorithm 1: S random seed episodes, then ``episodes`` rounds of
        C = collect_interval updates followed by one episode collected with the planner and
        exploration noise; every ``eval_every`` rounds an evaluation without noise.

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


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, **overrides) -> PlaNetAgent:
    """Train PlaNet headless in a profile (``python -m wmlib train planet``) on ``device``
    (default: the session's, `wmlib.devices.default_device`)."""
    return train_agent(PlaNetAgent, CONFIGS, profile, run_dir, seed, env_id, episodes,
                       progress, device, **overrides)


def train_agent(agent_cls, configs: dict, profile: str | None = None,
                run_dir: str | Path | None = None, seed: int = 0, env_id: str | None = None,
                episodes: int | None = None, progress: bool = True, device=None,
                prepare=None, **overrides):
    """Build ``agent_cls`` with its profile's config from ``configs`` (plus ``overrides``),
    log the set-up and run its Algorithm 1; `train` for PlaNet, `wmlib.agents.dreamer.train`
    for Dreamer. ``prepare(agent)``, if given, runs before training (ColloDreamer starts from
    chapter 4's world model with it)."""
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


def final_evaluation(agent: PlaNetAgent, episodes: int = 10, seed: int = 900_000) -> dict:
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


def record_run(agent: PlaNetAgent, name: str, notes: str = "", extra: dict | None = None) -> Path:
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


def run_log(agent: PlaNetAgent) -> str:
    """The whole log of a run: the run directory's log.txt (all sessions) or this session's."""
    if agent.run_dir is not None and (agent.run_dir / "log.txt").exists():
        return (agent.run_dir / "log.txt").read_text()
    return "\n".join(agent.log_lines)
