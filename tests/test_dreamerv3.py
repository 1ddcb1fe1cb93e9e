"""DreamerV3's pieces (`wmlib.dreamerv3`) against hand-computed cases and library references."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from wmlib import dreamerv3 as v3
from wmlib.models.rssm import State


def test_symlog_and_symexp_are_inverse_and_match_the_formula():
    x = torch.tensor([-1000.0, -math.e + 1, -0.5, 0.0, 0.5, math.e - 1, 1e6])
    assert torch.allclose(v3.symlog(x)[[1, 3, 5]], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(v3.symexp(v3.symlog(x)), x, rtol=1e-5)
    # close to the identity near zero, logarithmic far from it
    assert abs(v3.symlog(torch.tensor(0.01)).item() - 0.01) < 1e-4
    assert v3.symlog(torch.tensor(1e6)).item() == pytest.approx(math.log(1e6 + 1))


def test_twohot_splits_the_weight_between_the_two_nearest_bins():
    positions = torch.tensor([0.0, 1.0, 2.0, 3.0])
    enc = v3.twohot(torch.tensor([1.25, 0.0, 3.0, 7.0, -2.0]), positions)
    expected = torch.tensor([[0, 0.75, 0.25, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1],
                             [1, 0, 0, 0]])
    assert torch.allclose(enc, expected)
    y = torch.empty(1000).uniform_(-19.9, 19.9)
    b = v3.bins()
    enc = v3.twohot(y, b)
    assert torch.allclose(enc.sum(-1), torch.ones(1000))
    assert torch.allclose((enc * b).sum(-1), y, atol=1e-4)
    assert ((enc > 0).sum(-1) <= 2).all()


def test_twohot_mean_reads_back_the_target_and_cross_entropy_learns_a_large_value():
    y = torch.tensor([0.0, 3.0, -250.0, 12345.0])
    probs = v3.twohot(v3.symlog(y), v3.bins())
    dist = v3.TwoHot(torch.log(probs + 1e-30))
    assert torch.allclose(dist.mean, y, rtol=1e-4, atol=1e-4)
    # maximising log_prob from zero logits moves the mean to a target of 300 (a reward scale
    # that a unit-variance MSE head would take thousands of small steps to reach)
    logits = torch.zeros(v3.BINS, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(1000):
        opt.zero_grad()
        (-v3.TwoHot(logits).log_prob(torch.tensor(300.0))).backward()
        opt.step()
    assert v3.TwoHot(logits).mean.item() == pytest.approx(300.0, rel=0.02)


def test_twohot_head_starts_at_zero():
    head = v3.TwoHotHead(torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.SiLU(),
                                             torch.nn.Linear(8, v3.BINS)))
    assert torch.allclose(head(torch.randn(3, 5)), torch.zeros(3, 1), atol=1e-5)


def _gauss(mean, std):
    return State(mean, std, mean, torch.zeros(*mean.shape[:-1], 1))


def test_kl_free_bits_matches_torch_distributions_with_the_clip_and_stops_gradients():
    torch.manual_seed(0)
    qm = torch.randn(4, 3, 6, requires_grad=True)
    pm = torch.randn(4, 3, 6, requires_grad=True)
    qs, ps = torch.full((4, 3, 6), 0.5), torch.full((4, 3, 6), 0.8)
    post, prior = _gauss(qm, qs), _gauss(pm, ps)
    ref = kl_divergence(Independent(Normal(qm, qs), 1), Independent(Normal(pm, ps), 1))
    expected = 0.5 * ref.clamp(min=1).mean() + 0.1 * ref.clamp(min=1).mean()
    assert torch.allclose(v3.kl_free_bits(post, prior), expected)
    # the dynamics term trains only the prior, the representation term only the posterior
    v3.kl_free_bits(post, prior, dyn=1.0, rep=0.0).backward()
    assert qm.grad is None or torch.all(qm.grad == 0)
    assert pm.grad.abs().sum() > 0
    # steps below one nat give no gradient at all
    same = _gauss(pm.detach().clone().requires_grad_(), ps)
    v3.kl_free_bits(same, _gauss(pm.detach(), ps)).backward()
    assert torch.all(same.mean.grad == 0)


def test_unimix_keeps_every_class_above_one_percent_over_k():
    logits = torch.tensor([[20.0, -20.0, -20.0, -20.0]])
    p = torch.softmax(v3.unimix(logits, 0.01), -1)
    assert torch.allclose(p.sum(-1), torch.ones(1))
    assert p.min().item() == pytest.approx(0.01 / 4, rel=1e-3)
    assert p.max().item() == pytest.approx(0.99 + 0.01 / 4, rel=1e-4)
    assert torch.equal(v3.unimix(logits, 0.0), logits)


def test_return_norm_tracks_the_percentile_range_and_never_scales_up():
    rng = np.random.default_rng(0)
    returns = torch.tensor(rng.normal(0, 50, size=(15, 64)), dtype=torch.float32)
    norm = v3.ReturnNorm(decay=0.0)   # no averaging: the batch's own range
    spread = np.percentile(returns.numpy(), 95) - np.percentile(returns.numpy(), 5)
    assert norm.update(returns).item() == pytest.approx(spread, rel=1e-4)
    norm = v3.ReturnNorm(decay=0.99)  # averaged from 0: 1% of the range after one batch
    norm.update(returns)
    assert norm.range.item() == pytest.approx(0.01 * spread, rel=1e-4)
    for _ in range(2000):
        norm.update(returns)
    assert norm.scale().item() == pytest.approx(spread, rel=1e-3)
    small = v3.ReturnNorm(decay=0.0)  # sparse, small returns are not scaled up
    assert small.update(torch.rand(100) * 0.1).item() == 1.0


def test_ema_update_and_the_critic_regulariser():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    before = a.weight.detach().clone()
    v3.ema_update(a, b, decay=0.98)
    assert torch.allclose(a.weight, 0.98 * before + 0.02 * b.weight)
    logits = torch.zeros(3, v3.BINS)
    reg = v3.critic_ema_regulariser(v3.TwoHot(logits), torch.tensor([0.0, 1.0, -5.0]))
    assert torch.allclose(reg, torch.full((3,), math.log(v3.BINS)), atol=1e-4)


def test_the_dreamerv3_preset_puts_layernorm_and_silu_in_every_network():
    """DreamerV3 normalises every MLP (encoder, decoder, heads, RSSM, actor and critic)."""
    from wmlib.agents import dreamer

    cfg = dreamer.dreamerv3(dreamer.STATE_CONFIGS["smoke"])
    d = dreamer.Dreamer(cfg, action_size=1, obs_shape=(5,))
    for name in ("actor", "value"):
        kinds = {type(m).__name__ for m in getattr(d, name).modules()}
        assert {"LayerNorm", "SiLU"} <= kinds and "ELU" not in kinds, (name, kinds)
    for part in (d.world.encoder, d.world.decoder, d.world.reward, d.world.dynamics):
        assert any(isinstance(m, torch.nn.LayerNorm) for m in part.modules()), part
    plain = dreamer.Dreamer(dreamer.STATE_CONFIGS["smoke"], action_size=1, obs_shape=(5,))
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in plain.modules())
