"""Training objectives of the latent dynamics: the ELBO terms and overshooting.

Equation numbers refer to the PlaNet paper (Hafner et al. 2019, "Learning Latent Dynamics for
Planning from Pixels", arXiv:1811.04551). Shapes follow `wmlib.models.rssm`: time-major
``[T, B, ...]`` and ``actions[t] = a_{t-1}``, the action that led to ``o_t``.

PlaNet's loss for one batch is ``reconstruction_loss + reward_loss + kl_loss`` (the negative of
the one-step variational bound, eq. (3)); latent overshooting adds `latent_overshooting`, the
multi-step KL terms of eq. (7), and the complete loss of Fieldman and Gordon's PlaNet
reproduction (Columbia University, 2022) also adds `observation_overshooting`. Behaviour
learning in imagination starts with `lambda_return` (Dreamer and DreamerV2), the one every later
agent of the book uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.distributions import kl_divergence

from wmlib.models.rssm import LatentDynamics, State


def reconstruction_loss(
    mean: torch.Tensor, target: torch.Tensor, event_dims: int = 3
) -> torch.Tensor:
    """``-log p(o_t | s_t)`` of a unit-variance Gaussian, summed over the last ``event_dims``
    dimensions (3 for ``[C, H, W]`` images, 1 for vectors) and averaged over the rest.

    This is the reconstruction term of PlaNet's eq. (3) with its identity covariance;
    it includes the constant ``0.5 log(2 pi)`` per dimension:
    ``0.5 * sum (o - mean)^2 + 0.5 * n * log(2 pi)`` with ``n`` the event size. Written out
    rather than through ``Normal(mean, 1).log_prob`` (the same value; the tests compare them)
    because a PlaNet batch has 30 million pixels and every extra elementwise pass costs.
    """
    squared = (mean - target).square()
    n = math.prod(target.shape[target.dim() - event_dims:])
    per_step = squared.sum(tuple(range(-event_dims, 0))) if event_dims else squared
    return 0.5 * per_step.mean() + 0.5 * n * math.log(2 * math.pi)


def reward_loss(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-log p(r_t | s_t)`` of a scalar unit-variance Gaussian, averaged; shapes ``[T, B]``."""
    return reconstruction_loss(mean, target, event_dims=0)


def kl(post: State, prior: State) -> torch.Tensor:
    """``KL(q(s_t | ...) || p(s_t | ...))`` summed over the latent dimensions: ``[*lead]``."""
    return kl_divergence(post.dist(), prior.dist())


def kl_loss(post: State, prior: State, free_nats: float = 3.0) -> torch.Tensor:
    """The KL regularizer of PlaNet's eq. (3) with free nats, as PlaNet computes it.

    The KL is summed over latent dimensions, clamped *per step* to ``max(KL, free_nats)`` for every
    ``(t, b)``, and then averaged over time and batch (PlaNet's ``compute_losses``; Dreamer clamps
    the batch mean instead). Steps whose KL is below ``free_nats`` thus give no gradient. For
    ``kind="rnn"`` the KL is identically 0 and the term is the constant ``free_nats``.
    """
    return kl(post, prior).clamp(min=free_nats).mean()


def kl_balance(post: State, prior: State, alpha: float = 0.8,
               free_nats: float = 0.0) -> torch.Tensor:
    """DreamerV2's KL balancing (Hafner et al. 2021, section 2.2 and Algorithm 2):

        alpha * KL(sg(q) || p) + (1 - alpha) * KL(q || sg(p)),

    the same value as ``KL(q || p)``, but the prior p is trained towards the posterior q with
    weight ``alpha`` (0.8) and q is regularised towards p with only ``1 - alpha``: the prior
    learns to predict the representations faster than the representations collapse towards a
    poor prior. Each term is averaged over time and batch and then clamped below by
    ``free_nats``, as in DreamerV2's code (its ``free_avg``), unlike PlaNet's per-step clamp of
    `kl_loss`. ``alpha = 0.5`` is the plain KL.
    """
    prior_term = kl(post.detach(), prior).mean().clamp(min=free_nats)
    post_term = kl(post, prior.detach()).mean().clamp(min=free_nats)
    return alpha * prior_term + (1 - alpha) * post_term


def overshooting_priors(
    dynamics: LatentDynamics,
    posteriors: State,
    actions: torch.Tensor,
    distance: int,
    initial: State | None = None,
) -> Iterator[tuple[int, State]]:
    """The open-loop priors behind overshooting: yields ``(d, priors_d)`` for ``d = 1..distance``.

    ``posteriors`` (``[T, B]``) and ``actions`` (``[T, B, A]``) are those given to and returned by
    `LatentDynamics.observe`; ``initial`` is the state ``observe`` started from (default
    ``dynamics.initial(B)``). From every start state, ``initial`` and ``posteriors[0..T-2]``, the
    prior is rolled open-loop under the recorded actions (one sample path of the multi-step
    prediction, PlaNet's eq. (5)). ``priors_d`` has shape ``[T - d + 1, B]``: ``priors_d[i]``
    predicts ``s_{i + d - 1}`` from the state d steps before it, so it lines up with
    ``posteriors[d - 1:]`` and ``obs[d - 1:]``. With ``d = 1`` these are ``observe``'s priors (up
    to the resampled ``stoch``). Gradients flow into the start states.
    """
    steps, batch = actions.shape[:2]
    if not 1 <= distance <= steps:
        raise ValueError(f"need 1 <= distance <= T={steps}, got distance={distance}")
    if initial is None:
        initial = dynamics.initial(batch)
    # The state before time t: s_0 for t = 0, else the posterior of s_{t-1}.
    state = State.stack([initial, *(posteriors[t] for t in range(steps - 1))])
    for d in range(1, distance + 1):
        n = steps - d + 1  # starts whose d-step prediction lands inside the sequence
        prior = dynamics.img_step(state[:n].flatten(), actions[d - 1 :].flatten(0, 1))
        state = prior.unflatten(0, (n, batch))
        yield d, state


def latent_overshooting(
    dynamics: LatentDynamics,
    posteriors: State,
    actions: torch.Tensor,
    distance: int,
    betas: Sequence[float] | None = None,
    free_nats: float = 3.0,
    initial: State | None = None,
    priors: Sequence[tuple[int, State]] | None = None,
) -> torch.Tensor:
    """Latent overshooting, PlaNet's eq. (7): KL terms for the d-step predictions,
    ``d = 1..distance``.

    The d-step prior of ``s_t`` (`overshooting_priors`, same arguments) is compared with the
    posterior of ``s_t``::

        loss = 1/D sum_d beta_d mean_{t,b} max(KL(q'(s_t | o_<=t) || p(s_t | s_t-d)), free_nats)

    with ``q' = q`` for ``d = 1`` and ``q' = sg(q)`` for ``d > 1``.

    For ``d > 1`` the posteriors are stop-gradient targets (``sg``; PlaNet, Section 4, and
    Fieldman and Gordon 2022): the multi-step priors are pulled towards them, never the reverse.
    The ``d = 1`` term is the ELBO's own KL and trains both sides, so at ``distance=1`` the loss
    and its gradient are those of `kl_loss`. The start states are not detached, as in PlaNet.
    For each ``d`` the
    mean runs over the ``T - d + 1`` steps that have a d-step prediction inside the sequence, and
    free nats clamp every step as in `kl_loss`. With ``distance=1`` (and ``betas=[1]``) the value
    equals `kl_loss` of ``observe``'s posteriors and priors. ``betas`` defaults to all ones.
    ``priors`` may pass the list of `overshooting_priors` already rolled (to share it with
    `observation_overshooting`).
    """
    betas = [1.0] * distance if betas is None else list(betas)
    if len(betas) != distance:
        raise ValueError(f"need one beta per distance, got {len(betas)} for distance={distance}")
    targets = posteriors.detach()
    loss = 0.0
    if priors is None:
        priors = overshooting_priors(dynamics, posteriors, actions, distance, initial)
    for d, prior in priors:
        target = posteriors if d == 1 else targets[d - 1 :]
        loss = loss + betas[d - 1] * kl(target, prior).clamp(min=free_nats).mean()
    return loss / distance


def observation_overshooting(
    dynamics: LatentDynamics,
    decoder: Callable[[torch.Tensor], torch.Tensor],
    posteriors: State,
    actions: torch.Tensor,
    obs: torch.Tensor,
    distance: int,
    event_dims: int = 3,
    initial: State | None = None,
    priors: Sequence[tuple[int, State]] | None = None,
) -> torch.Tensor:
    """Observation overshooting (``L_OS-MSE`` of Fieldman and Gordon 2022): reconstruct ``o_t``
    from d-step priors.

    ``1/D sum_d reconstruction_loss(decoder(features of p(s_t | s_t-d)), o_t)`` over the open-loop
    priors of `overshooting_priors` (same arguments; ``obs`` is ``[T, B, ...]``). PlaNet found it
    too costly for images and replaced it by `latent_overshooting`; it is the multi-step loss of
    ``kind="rnn"``, whose open-loop (observation-free) GRU step nothing else trains.

    With the reward head as ``decoder``, rewards ``[T, B]`` as ``obs`` and ``event_dims=0`` it is
    *reward overshooting*: the reward predicted d steps open-loop, which is what the planner sums.
    Attribution: PlaNet's paper does not use it. google-research/planet had a reward overshooting
    term weighted 100 before its commit "Update hyper parameters to camera ready version", which
    set the overshooting distance and this scale to 0 (and free nats to 3); there it started at
    d = 2, since its one-step loss covers d = 1. This function averages d = 1..D: its d = 1 term
    is the reward of the one-step *prior*, a different state from the posterior whose reward the
    ELBO's reward term trains. Chapter 3's quick profile uses it because the chapter's own
    offline measurement found it helps at that budget.
    ``priors``: as in `latent_overshooting`.
    """
    if priors is None:
        priors = overshooting_priors(dynamics, posteriors, actions, distance, initial)
    loss = 0.0
    for d, prior in priors:
        loss = loss + reconstruction_loss(decoder(prior.features()), obs[d - 1 :], event_dims)
    return loss / distance


# -- behaviour learning ------------------------------------------------------------------------


def lambda_return(rewards: torch.Tensor, values: torch.Tensor, discounts: torch.Tensor,
                  bootstrap: torch.Tensor, lambda_: float = 0.95) -> torch.Tensor:
    """The lambda-return of Dreamer (Hafner et al. 2020, eq. 6) in DreamerV2's recursive form
    (Hafner et al. 2021, eq. 4), shared by every agent of the book that learns in imagination:

        V_t = r_t + gamma_t * ((1 - lambda) * v(s_{t+1}) + lambda * V_{t+1}),   V_H = v(s_H).

    Time-major like the RSSM: ``rewards``, ``values`` and ``discounts`` are ``[H, ...]`` along an
    imagined trajectory (``values[t] = v(s_t)``, ``discounts[t] = gamma_t``, the discount, or
    gamma times the predicted probability of continuing), ``bootstrap`` is ``v(s_H)`` of the
    state after the last step, ``[...]``. Returns ``V_t`` for t = 0..H-1, ``[H, ...]``.
    ``lambda_ = 1`` gives the discounted return bootstrapped at the horizon, ``lambda_ = 0``
    the one-step TD target ``r_t + gamma_t v(s_{t+1})``; in between, the exponentially weighted
    mean of the n-step returns (Dreamer's eq. 6).
    """
    if not (rewards.shape == values.shape == discounts.shape):
        raise ValueError(f"rewards {tuple(rewards.shape)}, values {tuple(values.shape)} and "
                         f"discounts {tuple(discounts.shape)} must have the same [H, ...] shape")
    if bootstrap.shape != rewards.shape[1:]:
        raise ValueError(f"bootstrap must have the shape {tuple(rewards.shape[1:])} of one "
                         f"step, got {tuple(bootstrap.shape)}")
    next_values = torch.cat([values[1:], bootstrap[None]])
    returns, last = [], bootstrap
    for t in reversed(range(rewards.shape[0])):
        last = rewards[t] + discounts[t] * ((1 - lambda_) * next_values[t] + lambda_ * last)
        returns.append(last)
    return torch.stack(returns[::-1])
