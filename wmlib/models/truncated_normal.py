"""The truncated normal distribution on ``[low, high]``, reparameterized by the inverse CDF,
for DreamerV2's continuous actions (Hafner et al. 2021, "Mastering Atari with Discrete World
Models", arXiv:2010.02193; danijar/dreamerv2's ``trunc_normal`` action distribution).

For ``x ~ N(mu, sigma^2)`` restricted to ``[a, b]``, with ``alpha = (a - mu) / sigma``,
``beta = (b - mu) / sigma``, ``Z = Phi(beta) - Phi(alpha)`` and ``phi``, ``Phi`` the standard
normal density and CDF:

    density   p(x) = phi((x - mu) / sigma) / (sigma Z)                     on [a, b]
    sample    x = mu + sigma Phi^-1(Phi(alpha) + u Z),  u ~ U(0, 1)        (differentiable)
    mean      mu + sigma (phi(alpha) - phi(beta)) / Z
    entropy   log(sqrt(2 pi e) sigma Z) + (alpha phi(alpha) - beta phi(beta)) / (2 Z)

Unlike a tanh-squashed Gaussian, whose gradient ``1 - tanh^2`` vanishes when the mean drifts
to a bound, a sample near the bound still moves with ``mu`` and ``sigma``.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, Normal, constraints
from torch.distributions.utils import broadcast_all

_LOG_SQRT_2PI_E = 0.5 * math.log(2 * math.pi * math.e)


class TruncatedNormal(Distribution):
    """``N(loc, scale^2)`` truncated to ``[low, high]`` (elementwise; wrap in `Independent`
    for vectors). ``rsample`` is differentiable in ``loc`` and ``scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(self, loc, scale, low: float = -1.0, high: float = 1.0,
                 eps: float = 1e-6, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        self.low, self.high, self.eps = float(low), float(high), eps
        std = Normal(torch.zeros_like(self.loc), torch.ones_like(self.loc))
        self._alpha = (self.low - self.loc) / self.scale
        self._beta = (self.high - self.loc) / self.scale
        self._cdf_a, self._cdf_b = std.cdf(self._alpha), std.cdf(self._beta)
        self._Z = (self._cdf_b - self._cdf_a).clamp_min(1e-12)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.interval(self.low, self.high)

    @staticmethod
    def _phi(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc + self.scale * (self._phi(self._alpha) - self._phi(self._beta)) / self._Z

    @property
    def mode(self) -> torch.Tensor:
        return self.loc.clamp(self.low, self.high)

    def rsample(self, sample_shape=()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device)
        p = (self._cdf_a + u * self._Z).clamp(self.eps, 1 - self.eps)
        x = self.loc + self.scale * torch.special.ndtri(p)
        # The bounds themselves have density 0 for float rounding: keep samples just inside.
        return x.clamp(self.low + self.eps, self.high - self.eps)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z = (value - self.loc) / self.scale
        inside = (value >= self.low) & (value <= self.high)
        logp = -0.5 * z * z - 0.5 * math.log(2 * math.pi) - self.scale.log() - self._Z.log()
        return torch.where(inside, logp, torch.full_like(logp, -math.inf))

    def entropy(self) -> torch.Tensor:
        a, b = self._alpha, self._beta
        return (_LOG_SQRT_2PI_E + self.scale.log() + self._Z.log()
                + (a * self._phi(a) - b * self._phi(b)) / (2 * self._Z))


__all__ = ["TruncatedNormal"]
