"""DreamerV3's robustness tricks (D. Hafner, J. Pasukonis, J. Ba, T. Lillicrap, "Mastering
Diverse Domains through World Models", arXiv:2301.04104, 2023; Nature 2025), each a small
function named after the paper, used as options of the book's one RSSM and one Dreamer agent
(`wmlib.agents.dreamer.dreamerv3` switches them on):

* `symlog` and `symexp` ("Robust predictions"): squash observations and regression targets,
  ``symlog(x) = sign(x) ln(|x| + 1)``, so that one loss works for targets of any scale;
* `twohot` and `TwoHot` (the same section): a reward or value predicted as a softmax over 255
  bins equally spaced in symlog space, trained by cross-entropy against the *two-hot* encoding
  of the target (its weight split between the two nearest bins), read out as
  ``symexp(sum_i p_i b_i)``;
* `kl_free_bits` ("World model learning"): the KL split into a dynamics term
  ``max(1, KL(sg(q) || p))`` weighted 0.5 and a representation term ``max(1, KL(q || sg(p)))``
  weighted 0.1, each clipped below at one free nat per step;
* `unimix` (the same section): categorical latents (and policies) mixed with 1% uniform, so no
  class ever has probability zero and the KL stays finite;
* `ReturnNorm` ("Actor learning"): returns divided by ``max(1, S)`` where S is an exponential
  moving average (decay 0.99) of the range between the 95th and the 5th percentile of the
  lambda-returns: large returns are scaled down, small ones (sparse rewards) are not scaled up;
* `critic_ema_regulariser` ("Critic learning"): the critic's cross-entropy towards the
  prediction of its own exponential moving average (decay 0.98), weight 1.

LayerNorm and SiLU in every MLP are `wmlib.nets.mlp`'s ``norm=True, act="silu"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:  # no import at run time: the RSSM imports `unimix` from here
    from wmlib.models.rssm import State

BINS = 255             # the paper's number of bins
LOW, HIGH = -20.0, 20.0  # the bins' range in symlog space (symexp(20) ~ 5e8)


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) ln(|x| + 1)``: close to the identity near 0, logarithmic for large |x|."""
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `symlog`: ``sign(x) (exp(|x|) - 1)``."""
    return torch.sign(x) * torch.expm1(x.abs())


def bins(n: int = BINS, low: float = LOW, high: float = HIGH, device=None) -> torch.Tensor:
    """The bin positions ``b_1..b_n`` in symlog space, equally spaced from ``low`` to ``high``."""
    return torch.linspace(low, high, n, device=device)


def twohot(y: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The two-hot encoding ``[..., n]`` of the scalars ``y [...]`` (already in the bins'
    space): the weight of 1 split between the two bins ``b_k <= y < b_{k+1}`` in proportion to
    closeness, ``(b_{k+1} - y) / (b_{k+1} - b_k)`` on ``b_k``; values outside the range go to
    the end bin. ``sum_i twohot(y)_i b_i = y`` inside the range."""
    y = y.clamp(positions[0], positions[-1])
    upper = torch.searchsorted(positions, y.detach().contiguous(), right=True)
    upper = upper.clamp(1, len(positions) - 1)
    lower = upper - 1
    lo, hi = positions[lower], positions[upper]
    w_hi = ((y - lo) / (hi - lo)).clamp(0, 1)
    out = torch.zeros(*y.shape, len(positions), device=y.device, dtype=y.dtype)
    out.scatter_(-1, lower[..., None], (1 - w_hi)[..., None])
    out.scatter_add_(-1, upper[..., None], w_hi[..., None])
    return out


class TwoHot:
    """A scalar predicted by ``logits [..., n]`` over the symlog-spaced bins: ``mean`` is
    ``symexp(sum_i softmax(logits)_i b_i)``, ``log_prob(y)`` the negative cross-entropy
    ``sum_i twohot(symlog(y))_i log softmax(logits)_i``."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.positions = bins(logits.shape[-1], device=logits.device)

    @property
    def mean(self) -> torch.Tensor:
        probs = torch.softmax(self.logits, -1)
        return symexp((probs * self.positions).sum(-1))

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        target = twohot(symlog(y), self.positions)
        return (target * F.log_softmax(self.logits, -1)).sum(-1)


class TwoHotHead(nn.Module):
    """An MLP with ``BINS`` outputs read as a `TwoHot` scalar. The output layer starts at zero
    (as in the paper: the first predictions are 0, not random, which matters for rewards and
    values of large scale). ``forward`` gives the mean ``[..., 1]`` (the shape of a one-output
    MLP's, so the head drops in for one; ``[...]`` with ``keepdim=False``, a critic's),
    ``dist`` the `TwoHot`."""

    def __init__(self, net: nn.Sequential, keepdim: bool = True):
        super().__init__()
        self.net, self.keepdim = net, keepdim
        last = net[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def dist(self, features: torch.Tensor) -> TwoHot:
        return TwoHot(self.net(features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = self.dist(features).mean
        return mean[..., None] if self.keepdim else mean


def kl_free_bits(post: State, prior: State, dyn: float = 0.5, rep: float = 0.1,
                 free: float = 1.0) -> torch.Tensor:
    """DreamerV3's KL loss: ``dyn * max(free, KL(sg(q) || p)) + rep * max(free, KL(q ||
    sg(p)))``, each clipped per step (time and batch) and then averaged. The dynamics term
    trains the prior towards the representation; the smaller representation term keeps the
    representation predictable; the free nat per step stops both once the KL is small, so
    that the model spends its capacity on the predictions instead."""
    from wmlib.objectives import kl  # the book's one KL (objectives imports the RSSM)

    dyn_term = kl(post.detach(), prior).clamp(min=free).mean()
    rep_term = kl(post, prior.detach()).clamp(min=free).mean()
    return dyn * dyn_term + rep * rep_term


def unimix(logits: torch.Tensor, mix: float = 0.01) -> torch.Tensor:
    """Logits of ``(1 - mix) softmax(logits) + mix / K``: every class keeps at least
    ``mix / K`` of the probability."""
    if not mix:
        return logits
    probs = torch.softmax(logits, -1)
    return torch.log((1 - mix) * probs + mix / logits.shape[-1])


class ReturnNorm(nn.Module):
    """DreamerV3's return scale: ``S`` an exponential moving average (``decay`` 0.99, starting
    at 0 as in the released code) of ``Per(R, 95) - Per(R, 5)`` over each batch of
    lambda-returns; returns and advantages are divided by ``max(1, S)`` (`scale`). Kept in a
    buffer, so it is saved in checkpoints."""

    def __init__(self, decay: float = 0.99, low: float = 0.05, high: float = 0.95,
                 floor: float = 1.0):
        super().__init__()
        self.decay, self.low, self.high, self.floor = decay, low, high, floor
        self.register_buffer("range", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> torch.Tensor:
        """Fold the percentile range of ``returns`` into the average; returns the scale."""
        flat = returns.detach().float().flatten()
        spread = torch.quantile(flat, self.high) - torch.quantile(flat, self.low)
        self.range.mul_(self.decay).add_((1 - self.decay) * spread)
        return self.scale()

    def scale(self) -> torch.Tensor:
        """``max(floor, S)``: divide returns by this."""
        return self.range.clamp(min=self.floor)


def critic_ema_regulariser(dist: TwoHot, ema_mean: torch.Tensor) -> torch.Tensor:
    """``-log p_psi(v_ema(s) | s)``: the critic's negative log-likelihood of its EMA copy's
    predictions ``ema_mean [...]`` (per state, not averaged)."""
    return -dist.log_prob(ema_mean.detach())


@torch.no_grad()
def ema_update(target: nn.Module, source: nn.Module, decay: float = 0.98) -> None:
    """``target <- decay * target + (1 - decay) * source``, parameter by parameter."""
    for t, s in zip(target.parameters(), source.parameters()):
        t.lerp_(s, 1 - decay)


__all__ = ["BINS", "ReturnNorm", "TwoHot", "TwoHotHead", "bins", "critic_ema_regulariser",
           "ema_update", "kl_free_bits", "symexp", "symlog", "twohot", "unimix"]
