"""The actor and the critic that Dreamer learns in imagination (Hafner et al. 2020, section 3).

* `TanhNormalActor`: the action model ``q_phi(a_t | s_t)``, a Gaussian squashed by tanh into
  [-1, 1], with Dreamer's mean scale (5) and initial standard deviation (5);
* `TruncNormalActor`: DreamerV2's action model for continuous control, a Gaussian with mean
  ``tanh(x)`` truncated to [-1, 1], its standard deviation bounded in [0.1, 2.1];
* `ACTORS` and `make_actor`: the actor by its name in the configuration (``actor_dist``);
* `ValueNet`: the value model ``v_psi(s_t)``, the mean of a unit-variance Gaussian over the
  return (Dreamer's value loss is then half the squared error, eq. 8).

Both read the latent features ``[deter, stoch]`` of `wmlib.models.rssm.State.features`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Independent, Normal, TanhTransform, TransformedDistribution
from torch.nn import functional as F

from wmlib.models.truncated_normal import TruncatedNormal
from wmlib.nets import mlp


class TanhNormalActor(nn.Module):
    """``a = tanh(u)``, ``u ~ N(mean, std)`` per action dimension (Dreamer's ``tanh_normal``).

    ``mean = mean_scale * tanh(x / mean_scale)`` keeps the pre-squash mean in a range where tanh
    still has a gradient; ``std = softplus(x + raw_init) + min_std`` starts at ``init_std``.
    Dreamer: 4 hidden layers of 400 ELU units, mean scale 5, initial std 5, min std 1e-4.
    """

    def __init__(self, feature_size: int, action_size: int, hidden: int = 400, layers: int = 4,
                 init_std: float = 5.0, mean_scale: float = 5.0, min_std: float = 1e-4,
                 act: str = "elu", norm: bool = False):
        super().__init__()
        self.net = mlp(feature_size, 2 * action_size, hidden, layers, act=act, norm=norm)
        self.mean_scale, self.min_std = mean_scale, min_std
        self.raw_init_std = math.log(math.exp(init_std) - 1)  # softplus^-1(init_std)

    def forward(self, features: torch.Tensor) -> Independent:
        """The action distribution ``q_phi(a | s)``, batch shape ``[...]``, event ``[A]``."""
        mean, std = self.net(features).chunk(2, -1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        std = F.softplus(std + self.raw_init_std) + self.min_std
        squashed = TransformedDistribution(Normal(mean, std), TanhTransform(cache_size=1))
        return Independent(squashed, 1)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """The deterministic action for evaluation: ``tanh`` of the Gaussian's mean. (Dreamer's
        code takes the most likely of 100 samples instead; both pick the centre of the
        squashed distribution.)"""
        mean, _ = self.net(features).chunk(2, -1)
        return torch.tanh(self.mean_scale * torch.tanh(mean / self.mean_scale))


class TruncNormalActor(nn.Module):
    """``a ~ N(tanh(x_mean), std)`` truncated to [-1, 1] (DreamerV2's ``trunc_normal``,
    danijar/dreamerv2's DMC configuration), with ``std = 2 sigmoid((x_std + init) / 2) +
    min_std``, between ``min_std`` (0.1) and ``2 + min_std``. A sample near a bound keeps its
    gradient in the mean and std (`wmlib.models.truncated_normal`), where the tanh-squashed
    Gaussian's vanishes once its mean saturates; the std cannot fall below ``min_std``."""

    def __init__(self, feature_size: int, action_size: int, hidden: int = 400, layers: int = 4,
                 init_std: float = 0.0, min_std: float = 0.1, act: str = "elu",
                 norm: bool = False):
        super().__init__()
        self.net = mlp(feature_size, 2 * action_size, hidden, layers, act=act, norm=norm)
        self.init_std, self.min_std = init_std, min_std

    def forward(self, features: torch.Tensor) -> Independent:
        """The action distribution ``q_phi(a | s)``, batch shape ``[...]``, event ``[A]``."""
        mean, std = self.net(features).chunk(2, -1)
        std = 2 * torch.sigmoid((std + self.init_std) / 2) + self.min_std
        return Independent(TruncatedNormal(torch.tanh(mean), std, -1.0, 1.0), 1)

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """The deterministic action for evaluation: the truncated Gaussian's mode,
        ``tanh(x_mean)``."""
        mean, _ = self.net(features).chunk(2, -1)
        return torch.tanh(mean)


ACTORS = {"tanh_normal": TanhNormalActor, "trunc_normal": TruncNormalActor}


def make_actor(dist: str, feature_size: int, action_size: int, hidden: int,
               init_std: float, act: str = "elu", norm: bool = False) -> nn.Module:
    """The actor named ``dist`` (`ACTORS`): ``tanh_normal`` (Dreamer) with initial std
    ``init_std``, or ``trunc_normal`` (DreamerV2, its own std parametrisation); ``act`` and
    ``norm`` its MLP's activation and LayerNorm (DreamerV3: silu, LayerNorm)."""
    if dist not in ACTORS:
        raise ValueError(f"Unknown actor distribution {dist!r}; choose one of {sorted(ACTORS)}.")
    if dist == "tanh_normal":
        return TanhNormalActor(feature_size, action_size, hidden, init_std=init_std, act=act,
                               norm=norm)
    return TruncNormalActor(feature_size, action_size, hidden, act=act, norm=norm)


def action_std(dist: Independent) -> torch.Tensor:
    """The standard deviation parameter of an actor's distribution (before any squashing)."""
    base = dist.base_dist
    return base.base_dist.scale if isinstance(base, TransformedDistribution) else base.scale


class ValueNet(nn.Module):
    """``v_psi(s)``: 3 hidden layers of 400 ELU units (Dreamer), one output, ``[...]``.

    The regularisers Wan and Chen tried on ColloDreamer's value network (their figure 1), off
    by default: ``dropout`` (probability after each hidden layer), ``batch_norm`` (before each
    activation) and ``clip`` = (low, high), the prediction clipped into that range."""

    def __init__(self, feature_size: int, hidden: int = 400, layers: int = 3,
                 dropout: float = 0.0, batch_norm: bool = False,
                 clip: tuple[float, float] | None = None):
        super().__init__()
        if not dropout and not batch_norm:
            self.net = mlp(feature_size, 1, hidden, layers, act="elu")
        else:
            mods: list[nn.Module] = []
            d = feature_size
            for _ in range(layers):
                mods.append(nn.Linear(d, hidden))
                if batch_norm:
                    mods.append(nn.BatchNorm1d(hidden))
                mods.append(nn.ELU())
                if dropout:
                    mods.append(nn.Dropout(dropout))
                d = hidden
            self.net = nn.Sequential(*mods, nn.Linear(d, 1))
        self.clip = clip

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lead = features.shape[:-1]  # BatchNorm1d wants [N, F]: flatten the leading dimensions
        value = self.net(features.reshape(-1, features.shape[-1])).reshape(lead)
        return value if self.clip is None else value.clamp(*self.clip)
