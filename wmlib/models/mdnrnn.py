"""M: the MDN-RNN memory model of World Models (Ha & Schmidhuber 2018).

An LSTM reads [z_t, a_t] and its output h_{t+1} parameterises a mixture density network
(Bishop 1994; Graves 2013; Sketch-RNN) over the next latent code, one mixture of K Gaussians
per latent dimension:

    P(z_{t+1} | a_t, z_t, h_t) = prod_j sum_k pi_jk N(z_{t+1,j}; mu_jk, sigma_jk^2).

With ``latent_dim=32, action_dim=3, hidden=256, n_mixtures=5`` and no reward or done head the
paper counts 422,368 parameters for CarRacing; PyTorch's LSTM keeps two bias vectors where
TensorFlow keeps one, so this module has 1,024 more (423,392).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, Normal

State = tuple[torch.Tensor, torch.Tensor]  # LSTM (h, c), each (batch, hidden)


class MDNParams(NamedTuple):
    """Output of M at each step: mixture parameters of shape (..., latent_dim, n_mixtures),
    the predicted reward (...) and the done logit (...), or None without those heads."""

    logits: torch.Tensor
    mean: torch.Tensor
    log_std: torch.Tensor
    reward: torch.Tensor | None
    done: torch.Tensor | None


class MDNRNN(nn.Module):
    """LSTM over [z_t, a_t] with a mixture-density head for z_{t+1} and optional reward and
    done heads (the latter used for the Doom dream environment)."""

    def __init__(self, latent_dim: int = 32, action_dim: int = 3, hidden: int = 256,
                 n_mixtures: int = 5, reward_head: bool = True, done_head: bool = True):
        super().__init__()
        self.latent_dim, self.hidden, self.n_mixtures = latent_dim, hidden, n_mixtures
        self.lstm = nn.LSTM(latent_dim + action_dim, hidden, batch_first=True)
        self.mdn = nn.Linear(hidden, latent_dim * 3 * n_mixtures)
        self.reward = nn.Linear(hidden, 1) if reward_head else None
        self.done = nn.Linear(hidden, 1) if done_head else None

    def initial_state(self, batch_size: int) -> State:
        """h_0 = c_0 = 0."""
        zeros = torch.zeros(batch_size, self.hidden, device=self.mdn.weight.device)
        return zeros, zeros.clone()

    def forward(self, z: torch.Tensor, a: torch.Tensor, hidden: State | None = None,
                restart: torch.Tensor | None = None) -> tuple[MDNParams, State]:
        """Run M over sequences z (B, T, latent_dim) and a (B, T, action_dim).

        Step t of the output predicts z_{t+1}, r_{t+1} and done_{t+1}. Returns the parameters,
        each with leading shape (B, T), and the final LSTM state.

        ``restart`` (B, T), 1 where z_t is the first frame of an episode: the LSTM state is set
        to zero before that step, as the original Doom model does for windows that run across
        episodes (WorldModelsExperiments, ``doomrnn.py``: ``c = tf.where(restart_flag,
        zero_c, c)``). This path runs the LSTM one step at a time.
        """
        x = torch.cat([z, a], -1)
        if restart is not None:
            return self._forward_with_restarts(x, hidden, restart)
        if hidden is not None:
            hidden = (hidden[0].unsqueeze(0), hidden[1].unsqueeze(0))
        out, (h, c) = self.lstm(x, hidden)
        return self._heads(out), (h.squeeze(0), c.squeeze(0))

    def _forward_with_restarts(self, x: torch.Tensor, hidden: State | None,
                               restart: torch.Tensor) -> tuple[MDNParams, State]:
        h, c = hidden if hidden is not None else self.initial_state(x.shape[0])
        keep = (1 - restart.to(x.dtype)).unsqueeze(-1)  # (B, T, 1): 0 where an episode starts
        outs = []
        for t in range(x.shape[1]):
            h, c = h * keep[:, t], c * keep[:, t]
            out, (h, c) = self.lstm(x[:, t : t + 1], (h.unsqueeze(0), c.unsqueeze(0)))
            h, c = h.squeeze(0), c.squeeze(0)
            outs.append(out)
        return self._heads(torch.cat(outs, 1)), (h, c)

    def _heads(self, out: torch.Tensor) -> MDNParams:
        mdn = self.mdn(out).unflatten(-1, (self.latent_dim, 3 * self.n_mixtures))
        logits, mean, log_std = mdn.chunk(3, dim=-1)
        reward = None if self.reward is None else self.reward(out).squeeze(-1)
        done = None if self.done is None else self.done(out).squeeze(-1)
        return MDNParams(logits, mean, log_std, reward, done)

    def step(self, z: torch.Tensor, a: torch.Tensor,
             hidden: State | None = None) -> tuple[MDNParams, State]:
        """One step for the dream environment: z (B, latent_dim), a (B, action_dim)."""
        params, hidden = self(z.unsqueeze(1), a.unsqueeze(1), hidden)
        return MDNParams(*(None if p is None else p.squeeze(1) for p in params)), hidden

    @staticmethod
    def mixture(params: MDNParams, temperature: float = 1.0) -> MixtureSameFamily:
        """The mixture per latent dimension, with the World Models temperature tau:
        pi = softmax(logits / tau), sigma = exp(log_std) * sqrt(tau)."""
        return MixtureSameFamily(
            Categorical(logits=params.logits / temperature),
            Normal(params.mean, params.log_std.exp() * temperature**0.5),
        )

    @staticmethod
    def mdn_nll(params: MDNParams, z_next: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """-log sum_k pi_k N(z_next; mu_k, sigma_k^2), averaged over batch, time and latent
        dimensions (as in the original code); with ``mask [B, T]`` over the steps where it is 1
        only (windows padded past the end of a rollout)."""
        return -_masked_mean(MDNRNN.mixture(params).log_prob(z_next).mean(-1), mask)

    @staticmethod
    def sample(params: MDNParams, temperature: float = 1.0) -> torch.Tensor:
        """Draw z_{t+1} at temperature tau. At tau = 0 return the mean of the most likely
        component, the deterministic limit of the tempered mixture."""
        if temperature == 0:
            k = params.logits.argmax(-1, keepdim=True)
            return params.mean.gather(-1, k).squeeze(-1)
        return MDNRNN.mixture(params, temperature).sample()

    def loss(self, z: torch.Tensor, a: torch.Tensor, z_next: torch.Tensor,
             reward: torch.Tensor | None = None, done: torch.Tensor | None = None,
             mask: torch.Tensor | None = None, restart: torch.Tensor | None = None,
             done_weight: float = 1.0) -> dict[str, torch.Tensor]:
        """L = NLL of z_next + MSE(r_hat, r) + BCE(done_logit, done), the last two only when
        their targets are given, each averaged over the steps where ``mask [B, T]`` is 1 (all
        steps without a mask). Returns ``loss`` and each term.

        ``done_weight`` w weighs the steps that end an episode w times in the BCE,
        (1 + done (w - 1)) BCE: deaths are rare, and the original Doom model uses w = 10
        (``doomrnn.py``'s ``r_cost``). ``restart`` resets the LSTM as in `forward`."""
        return self.loss_and_state(z, a, z_next, reward, done, mask, restart, done_weight)[0]

    def loss_and_state(self, z: torch.Tensor, a: torch.Tensor, z_next: torch.Tensor,
                       reward: torch.Tensor | None = None, done: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None, restart: torch.Tensor | None = None,
                       done_weight: float = 1.0,
                       hidden: State | None = None) -> tuple[dict[str, torch.Tensor], State]:
        """`loss` from the LSTM state ``hidden`` (zero if None), and the state after the last
        step: truncated backpropagation through time carries it, detached, into the next
        window of the same stream (the original Doom training's ``batch_state``)."""
        params, state = self(z, a, hidden, restart=restart)
        terms = {"nll": self.mdn_nll(params, z_next, mask)}
        if reward is not None:
            if params.reward is None:
                raise ValueError("reward targets given to an MDNRNN built with reward_head=False")
            terms["reward"] = _masked_mean((params.reward - reward) ** 2, mask)
        if done is not None:
            if params.done is None:
                raise ValueError("done targets given to an MDNRNN built with done_head=False")
            done = done.float()
            bce = F.binary_cross_entropy_with_logits(params.done, done, reduction="none")
            terms["done"] = _masked_mean(bce * (1 + done * (done_weight - 1)), mask)
        return {"loss": sum(terms.values()), **terms}, state


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of ``x [B, T]`` over the steps where ``mask`` is 1 (all of them without one)."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1)
