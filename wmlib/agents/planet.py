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
* `PlaNetAgent`: the model, its optimiser and update on the book's loop (`wmlib.loop`, PlaNet's
  Algorithm 1: S seed episodes, then C updates per collected episode, evaluation episodes,
  checkpoints and resume), and `train`, a headless run in a profile.

Everything is time-major inside (``[T, B, ...]``); replay chunks ``[B, T, ...]`` are transposed
once in `PlaNet.prepare`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmlib import devices
from wmlib.dreamerv3 import BINS, TwoHotHead, kl_free_bits, symexp, symlog
from wmlib.loop import OnlineAgent, curve, final_evaluation, record_run, run_log, train_agent
from wmlib.models.rssm import LatentDynamics, State
from wmlib.nets import OBS_SHAPE, ConvDecoder, ConvEncoder, mlp
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
from wmlib.training import scalars


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
    # DreamerV3's world-model options (`wmlib.dreamerv3`; all off: PlaNet's and Dreamer's).
    symlog_obs: bool = False            # states: encode and reconstruct symlog(o)
    twohot: bool = False                # the reward head: a two-hot softmax over symlog bins
    kl_dyn: float = 0.0                 # > 0: DreamerV3's KL, kl_dyn * max(free_nats, KL dyn)
    kl_rep: float = 0.0                 #   + kl_rep * max(free_nats, KL rep), clipped per step
    unimix: float = 0.0                 # categorical latents mixed with this much uniform
    norm: bool = False                  # LayerNorm in the MLPs and the RSSM's hidden layers
    act: str = "elu"                    # the MLPs' and the RSSM's activation (DreamerV3: silu)
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
                       "decoder_matmul": False, "compile": False, "obs_norm": False,
                       "symlog_obs": False, "twohot": False, "kl_dyn": 0.0, "kl_rep": 0.0,
                       "unimix": 0.0, "norm": False, "act": "elu"}

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
            self.encoder = mlp(self.obs_shape[0], embed_dim, cfg.hidden_size, 2, cfg.act,
                               cfg.norm)
        self.dynamics = LatentDynamics(action_size, embed_dim, cfg.kind,
                                       cfg.stoch_size, cfg.deter_size, cfg.hidden_size,
                                       cfg.min_std, act=cfg.act, classes=cfg.classes,
                                       unimix=cfg.unimix, norm=cfg.norm)
        if cfg.pixels:
            self.decoder = ConvDecoder(self.dynamics.feature_size, cfg.depth,
                                       channels_last=cfg.channels_last,
                                       first_matmul=cfg.decoder_matmul)
        else:
            self.decoder = mlp(self.dynamics.feature_size, self.obs_shape[0], cfg.hidden_size, 2,
                               cfg.act, cfg.norm)
        if cfg.twohot:  # DreamerV3: a softmax over 255 symlog bins, its last layer at zero
            self.reward = TwoHotHead(mlp(self.dynamics.feature_size, BINS, cfg.hidden_size, 2,
                                         cfg.act, cfg.norm))
        else:
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
        """The reward head's mean ``[...]`` (the two-hot mean with ``cfg.twohot``)."""
        return self.reward(features).squeeze(-1)

    def reward_loss(self, features: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
        """``-log p(r_t | s_t)``: unit-variance Gaussian, or DreamerV3's two-hot cross-entropy
        of ``symlog(r_t)`` with ``cfg.twohot``; averaged over ``[T, B]``."""
        if self.cfg.twohot:
            return -self.reward.dist(features).log_prob(rewards).mean()
        return reward_loss(self.predict_reward(features), rewards)

    def preprocess(self, obs, noise: bool = True) -> torch.Tensor:
        """uint8 pixels (any leading dims) -> floats in [-0.5, 0.5] with 5-bit quantisation;
        states -> float32, standardised per dimension with ``cfg.obs_norm``."""
        from wmlib.envs import preprocess

        if not self.cfg.pixels:
            x = devices.to_device(obs, self._device(), torch.float32)
            _check_obs(x, self.obs_shape)
            x = (x - self.obs_loc) / self.obs_scale if self.cfg.obs_norm else x
            return symlog(x) if self.cfg.symlog_obs else x
        x = devices.to_device(obs, self._device())  # uint8 over the bus, converted on the device
        _check_obs(x)
        return preprocess(x, bits=self.cfg.bits, noise=noise and self.cfg.bits < 8)

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """A state in the model's space (`preprocess`'s output, `decode`'s) -> the
        environment's units (the identity without ``cfg.obs_norm`` and ``cfg.symlog_obs``,
        and for pixels)."""
        if self.cfg.pixels:
            return x
        x = symexp(x) if self.cfg.symlog_obs else x
        return x * self.obs_scale + self.obs_loc if self.cfg.obs_norm else x

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
        * With ``kl_dyn > 0``, DreamerV3's KL in place of the above (`wmlib.dreamerv3.
          kl_free_bits`); with ``twohot``, DreamerV3's two-hot reward loss (`reward_loss`).
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
        rew = self.reward_loss(features, rewards)
        metrics = {}
        total = recon + cfg.reward_scale * rew
        # The open-loop priors d = 1..D, rolled once and shared by the overshooting terms.
        over_priors = (list(overshooting_priors(self.dynamics, posteriors, actions, D))
                       if D >= 2 else None)
        if self.dynamics.stoch_size:
            if cfg.kl_dyn:  # DreamerV3: dynamics and representation terms, free bits per step
                kl = kl_free_bits(posteriors, priors, cfg.kl_dyn, cfg.kl_rep, cfg.free_nats)
            elif cfg.kl_clamp == "step" and cfg.kl_alpha == 0.5:
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


# -- the agent ---------------------------------------------------------------------------
class PlaNetAgent(OnlineAgent):
    """PlaNet on the book's loop (`wmlib.loop.OnlineAgent`: replay, checkpoints, resume,
    evaluation, Algorithm 1's schedule): the model and its optimiser, the update of eq. (3)
    and MPC with latent CEM."""

    NAME = "PlaNet"
    PUBLISHED = ("Published PlaNet (Hafner et al. 2019, Table 1): 821 on cartpole-swingup after "
                 "1000 episodes; about 300 at 100k environment steps (CURL/DrQ papers). Cited, "
                 "not ours.")

    def build(self, action_size: int, obs_shape: tuple[int, ...] = OBS_SHAPE) -> None:
        """The model and its Adam optimiser."""
        self.model = PlaNet(self.cfg, action_size, obs_shape).to(self.device)
        self.optim = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr,
                                      eps=self.cfg.adam_eps)

    def modules(self) -> dict:
        return {"model": self.model, "optim": self.optim}

    def make_policy(self, noise: float, seed: int) -> PlaNetPolicy:
        """MPC with latent CEM."""
        return PlaNetPolicy(self.model, noise=noise, seed=seed)

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


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, **overrides) -> PlaNetAgent:
    """Train PlaNet headless in a profile (``python -m wmlib train planet``) on ``device``
    (default: the session's, `wmlib.devices.default_device`)."""
    return train_agent(PlaNetAgent, CONFIGS, profile, run_dir, seed, env_id, episodes,
                       progress, device, **overrides)



# The loop's functions, under the names chapters 3-5 call them by (``planet.record_run`` ...).
__all__ = ["CONFIGS", "FAST", "OBS_SHAPE", "PlaNet", "PlaNetAgent", "PlaNetConfig",
           "PlaNetPolicy", "curve", "final_evaluation", "record_run", "rollout_returns",
           "run_log", "train", "train_agent"]
