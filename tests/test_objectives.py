"""Tests of wmlib.objectives against hand computations and a naive overshooting loop."""

import math

import pytest
import torch
from torch.distributions import Normal

from wmlib.models import rssm
from wmlib.models.rssm import LatentDynamics, State
from wmlib.nets import mlp
from wmlib.objectives import (
    kl_loss,
    latent_overshooting,
    observation_overshooting,
    overshooting_priors,
    reconstruction_loss,
    reward_loss,
)

T, B, A, E = 5, 3, 2, 6


def make(kind: str = "rssm", seed: int = 0):
    torch.manual_seed(seed)
    dynamics = LatentDynamics(A, E, kind, stoch_size=4, deter_size=8, hidden_size=16)
    embed, actions = torch.randn(T, B, E), torch.randn(T, B, A)
    posteriors, priors = dynamics.observe(embed, actions)
    return dynamics, actions, posteriors, priors


def gaussian_state(mean: torch.Tensor, std: torch.Tensor) -> State:
    return State(mean, std, mean, mean.new_zeros(*mean.shape[:-1], 0))


def test_kl_loss_matches_closed_form_for_diagonal_gaussians():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(2, T, B, 4, generator=g, dtype=torch.float64)
    sq, sp = torch.rand(2, T, B, 4, generator=g, dtype=torch.float64) + 0.2
    # KL(N(mq, sq^2) || N(mp, sp^2)) per dimension, summed over the 4 latent dimensions.
    per_step = (torch.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5).sum(-1)
    loss = kl_loss(gaussian_state(mq, sq), gaussian_state(mp, sp), free_nats=0.0)
    torch.testing.assert_close(loss, per_step.mean())


def test_free_nats_clamp_each_step_and_block_its_gradient():
    # Unit-variance Gaussians in one dimension: KL = (mq - mp)^2 / 2 = 0.5, 2, 4.5, 8 nats.
    mq = torch.tensor([[1.0], [2.0], [3.0], [4.0]], requires_grad=True)
    post = gaussian_state(mq, torch.ones_like(mq))
    prior = gaussian_state(torch.zeros_like(mq), torch.ones_like(mq))
    loss = kl_loss(post, prior, free_nats=3.0)
    assert loss.item() == pytest.approx((3.0 + 3.0 + 4.5 + 8.0) / 4)
    loss.backward()
    # d/dmq of (mq^2 / 2) / 4 is mq / 4 where the KL is above the free nats, else 0.
    torch.testing.assert_close(mq.grad, torch.tensor([[0.0], [0.0], [0.75], [1.0]]))


@pytest.mark.parametrize("kind", ["ssm", "rssm"])
@pytest.mark.parametrize("free_nats", [0.0, 0.3])
def test_overshooting_at_distance_one_equals_the_plain_kl(kind, free_nats):
    dynamics, actions, posteriors, priors = make(kind)
    overshooting = latent_overshooting(dynamics, posteriors, actions, 1, free_nats=free_nats)
    plain = kl_loss(posteriors, priors, free_nats=free_nats)
    assert plain.item() > free_nats + 0.05  # not a constant: some steps are above the clamp
    torch.testing.assert_close(overshooting, plain)


def test_overshooting_matches_a_naive_loop_over_every_start_and_distance(monkeypatch):
    # Take the mean instead of a sample so two different loop orders see the same states.
    monkeypatch.setattr(rssm, "_rsample", lambda mean, std: mean)
    dynamics, actions, posteriors, _ = make("rssm")
    betas, free_nats = [1.0, 0.5, 0.25], 0.2
    expected = 0.0
    for d, beta in enumerate(betas, start=1):
        kls = []
        for t in range(d - 1, T):  # s_t predicted d steps ahead from s_{t-d}
            state = dynamics.initial(B) if t - d < 0 else posteriors[t - d]
            for tau in range(t - d + 1, t + 1):
                state = dynamics.img_step(state, actions[tau])
            kls.append(torch.distributions.kl_divergence(posteriors[t].dist(), state.dist()))
        expected += beta * torch.stack(kls).clamp(min=free_nats).mean()
    expected /= len(betas)
    loss = latent_overshooting(dynamics, posteriors, actions, 3, betas, free_nats)
    torch.testing.assert_close(loss, expected)


def test_overshooting_betas_weight_each_distance():
    dynamics, actions, posteriors, priors = make("rssm")
    loss = latent_overshooting(dynamics, posteriors, actions, 2, betas=[1.0, 0.0], free_nats=0.0)
    torch.testing.assert_close(loss, kl_loss(posteriors, priors, free_nats=0.0) / 2)


def test_overshooting_stops_the_gradient_of_its_posterior_targets():
    dynamics, actions, posteriors, _ = make("rssm")
    # Rebuild the posteriors from leaf tensors: mean/std are only used as targets, while the
    # sample and belief are where the open-loop priors start from.
    mean, std, stoch, deter = (
        x.detach().requires_grad_()
        for x in (posteriors.mean, posteriors.std, posteriors.stoch, posteriors.deter)
    )
    posteriors = State(mean, std, stoch, deter)
    # d = 2 and 3 only (beta_1 = 0): no gradient reaches the posterior's statistics.
    latent_overshooting(dynamics, posteriors, actions, 3, betas=[0.0, 1.0, 1.0],
                        free_nats=0.0).backward()
    assert all(g is None or g.abs().sum() == 0 for g in (mean.grad, std.grad))
    assert stoch.grad.abs().sum() > 0 and deter.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for p in dynamics.prior_net.parameters())
    # The plain KL, in contrast, trains the posterior too.
    kl_loss(posteriors, posteriors.map(lambda x: x.detach() + 0.1), free_nats=0.0).backward()
    assert mean.grad.abs().sum() > 0


def test_overshooting_rejects_a_distance_longer_than_the_sequence():
    dynamics, actions, posteriors, _ = make("rssm")
    with pytest.raises(ValueError):
        latent_overshooting(dynamics, posteriors, actions, T + 1)
    with pytest.raises(ValueError):
        latent_overshooting(dynamics, posteriors, actions, 2, betas=[1.0])


def test_observation_overshooting_decodes_the_d_step_predictions():
    # The RNN is deterministic, so a naive loop sees the same states without any patching.
    dynamics, actions, posteriors, priors = make("rnn")
    decoder, obs = mlp(dynamics.feature_size, 7, 8, 1), torch.randn(T, B, 7)
    one_step = reconstruction_loss(decoder(priors.features()), obs, event_dims=1)
    loss = observation_overshooting(dynamics, decoder, posteriors, actions, obs, 1, event_dims=1)
    torch.testing.assert_close(loss, one_step)
    two_step = []
    for t in range(1, T):
        state = dynamics.initial(B) if t < 2 else posteriors[t - 2]
        for tau in (t - 1, t):
            state = dynamics.img_step(state, actions[tau])
        two_step.append(decoder(state.features()))
    two_step = reconstruction_loss(torch.stack(two_step), obs[1:], event_dims=1)
    loss = observation_overshooting(dynamics, decoder, posteriors, actions, obs, 2, event_dims=1)
    torch.testing.assert_close(loss, (one_step + two_step) / 2)


def test_reward_overshooting_and_shared_priors_match_a_naive_loop():
    # Reward overshooting = observation overshooting with a scalar head and event_dims=0.
    dynamics, actions, posteriors, priors = make("rnn")
    head, rewards = mlp(dynamics.feature_size, 1, 8, 1), torch.randn(T, B)
    reward = lambda f: head(f).squeeze(-1)  # noqa: E731
    naive = 0.0
    for d in (1, 2, 3):
        preds = []
        for t in range(d - 1, T):
            state = dynamics.initial(B) if t < d else posteriors[t - d]
            for tau in range(t - d + 1, t + 1):
                state = dynamics.img_step(state, actions[tau])
            preds.append(reward(state.features()))
        naive = naive + reward_loss(torch.stack(preds), rewards[d - 1:])
    loss = observation_overshooting(dynamics, reward, posteriors, actions, rewards, 3,
                                    event_dims=0)
    torch.testing.assert_close(loss, naive / 3)
    # Rolled once and shared: the same values as rolling inside each function.
    shared = list(overshooting_priors(dynamics, posteriors, actions, 3))
    again = observation_overshooting(dynamics, reward, posteriors, actions, rewards, 3,
                                     event_dims=0, priors=shared)
    torch.testing.assert_close(again, loss)


def test_latent_overshooting_takes_shared_priors():
    dynamics, actions, posteriors, _ = make("rssm")
    torch.manual_seed(1)
    fresh = latent_overshooting(dynamics, posteriors, actions, 3, free_nats=0.0)
    torch.manual_seed(1)
    shared = list(overshooting_priors(dynamics, posteriors, actions, 3))
    given = latent_overshooting(dynamics, posteriors, actions, 3, free_nats=0.0, priors=shared)
    torch.testing.assert_close(given, fresh)


def test_gaussian_log_likelihood_losses_match_the_formula():
    g = torch.Generator().manual_seed(0)
    mean, target = torch.randn(2, T, B, 3, 8, 8, generator=g)
    squared = (0.5 * (target - mean) ** 2).sum((-3, -2, -1))
    expected = squared.mean() + 0.5 * 3 * 8 * 8 * math.log(2 * math.pi)
    torch.testing.assert_close(reconstruction_loss(mean, target), expected)
    r, r_hat = torch.randn(2, T, B, generator=g)
    expected = (0.5 * (r - r_hat) ** 2).mean() + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(reward_loss(r_hat, r), expected)


@pytest.mark.parametrize("event_dims", [0, 1, 3])
def test_reconstruction_loss_equals_torch_distributions_log_likelihood(event_dims):
    """The written-out loss against the library's Gaussian log-density."""
    from torch.distributions import Independent

    g = torch.Generator().manual_seed(1)
    mean, target = torch.randn(2, T, B, 3, 8, 8, generator=g)
    expected = -Independent(Normal(mean, 1.0), event_dims).log_prob(target).mean()
    torch.testing.assert_close(reconstruction_loss(mean, target, event_dims), expected)


def test_lambda_return_by_hand():
    """H = 2, one trajectory: V_1 = r_1 + g ((1-l) v_2 + l v_2) = r_1 + g v_2 (v_2 the
    bootstrap), V_0 = r_0 + g ((1-l) v_1 + l V_1)."""
    from wmlib.objectives import lambda_return

    r, v, g, lam, boot = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 3.0]), 0.9, 0.8, 10.0
    v1 = 2.0 + 0.9 * 10.0
    v0 = 1.0 + 0.9 * (0.2 * 3.0 + 0.8 * v1)
    out = lambda_return(r, v, torch.full((2,), g), torch.tensor(boot), lam)
    torch.testing.assert_close(out, torch.tensor([v0, v1]))


def test_lambda_return_is_the_weighted_mean_of_n_step_returns():
    """Dreamer's eq. 6: V_lambda(s_t) = (1-l) sum_{n=1}^{H-t-1} l^(n-1) V_N^n + l^(H-t-1) V_N^(H-t),
    with V_N^n the n-step return bootstrapped from v, computed naively."""
    from wmlib.objectives import lambda_return

    g = torch.Generator().manual_seed(0)
    H, lam, gamma = 6, 0.7, 0.95
    r, v = torch.randn(H, 3, generator=g), torch.randn(H, 3, generator=g)
    boot = torch.randn(3, generator=g)
    values = torch.cat([v, boot[None]])  # v(s_0..s_H)

    def n_step(t, n):
        h = min(t + n, H)
        return sum(gamma ** (k - t) * r[k] for k in range(t, h)) + gamma ** (h - t) * values[h]

    expected = torch.stack([
        (1 - lam) * sum(lam ** (n - 1) * n_step(t, n) for n in range(1, H - t))
        + lam ** (H - t - 1) * n_step(t, H - t) for t in range(H)])
    out = lambda_return(r, v, torch.full((H, 3), gamma), boot, lam)
    torch.testing.assert_close(out, expected)
    # lambda = 1: the discounted return to the horizon; lambda = 0: one-step TD targets
    torch.testing.assert_close(lambda_return(r, v, torch.full((H, 3), gamma), boot, 1.0)[0],
                               n_step(0, H))
    torch.testing.assert_close(lambda_return(r, v, torch.full((H, 3), gamma), boot, 0.0),
                               r + gamma * values[1:])


def test_kl_balance_keeps_the_value_and_splits_the_gradient_alpha_to_the_prior():
    from wmlib.objectives import kl, kl_balance

    g = torch.Generator().manual_seed(0)

    def leaf_state():
        mean = torch.randn(T, B, 4, generator=g).requires_grad_()
        std = (torch.rand(T, B, 4, generator=g) + 0.5).requires_grad_()
        return State(mean, std, mean, torch.zeros(T, B, 0))

    post, prior = leaf_state(), leaf_state()
    plain = kl(post, prior).mean()
    grads = torch.autograd.grad(plain, [post.mean, prior.mean])
    balanced = kl_balance(post, prior, alpha=0.8)
    torch.testing.assert_close(balanced, plain)
    b_post, b_prior = torch.autograd.grad(balanced, [post.mean, prior.mean])
    torch.testing.assert_close(b_post, 0.2 * grads[0])
    torch.testing.assert_close(b_prior, 0.8 * grads[1])
    # free nats clamp the averaged terms: far above the KL, the value is the floor and no
    # gradient flows
    clamped = kl_balance(post, prior, free_nats=1e6)
    assert clamped.item() == pytest.approx(1e6)
    assert torch.autograd.grad(clamped, post.mean)[0].abs().sum() == 0


def test_overshooting_at_distance_one_has_the_gradient_of_the_plain_kl():
    """PlaNet stops the posterior's gradient only for d > 1: at D = 1 latent overshooting is the
    ELBO's KL in value *and* gradient, into the posterior (encoder) and the prior alike."""
    dynamics, actions, posteriors, priors = make("rssm")
    params = [p for p in dynamics.parameters() if p.requires_grad]

    def grads(loss):
        return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)

    plain = grads(kl_loss(posteriors, priors, free_nats=0.0))
    over = grads(latent_overshooting(dynamics, posteriors, actions, 1, free_nats=0.0))
    assert sum(g.abs().sum() for g in plain if g is not None) > 0
    for a, b in zip(plain, over):
        if a is None:
            assert b is None or b.abs().sum() == 0
        else:
            torch.testing.assert_close(a, b)
