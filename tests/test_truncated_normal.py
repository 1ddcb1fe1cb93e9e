"""DreamerV2's truncated-normal actor (wmlib.models.truncated_normal, TruncNormalActor): the
distribution against scipy's truncnorm, and the gradient that the tanh-squashed Gaussian
loses at a saturated mean."""

import numpy as np
import pytest
import torch
from scipy import stats

from wmlib.models.actor_critic import TanhNormalActor, TruncNormalActor, action_std, make_actor
from wmlib.models.truncated_normal import TruncatedNormal

LOC = torch.tensor([0.0, 0.7, -0.95, 0.3], dtype=torch.float64)
SCALE = torch.tensor([1.0, 0.3, 0.1, 2.0], dtype=torch.float64)


def _scipy():
    a, b = ((-1 - LOC) / SCALE).numpy(), ((1 - LOC) / SCALE).numpy()
    return stats.truncnorm(a, b, loc=LOC.numpy(), scale=SCALE.numpy())


def test_density_mean_and_entropy_equal_scipys_truncnorm():
    d, ref = TruncatedNormal(LOC, SCALE), _scipy()
    x = torch.tensor([0.1, 0.5, -0.9, 0.99], dtype=torch.float64)
    np.testing.assert_allclose(d.log_prob(x).numpy(), ref.logpdf(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(d.mean.numpy(), ref.mean(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(d.entropy().numpy(), ref.entropy(), rtol=1e-6)
    assert d.log_prob(torch.full((4,), 1.5, dtype=torch.float64)).isinf().all()


def test_samples_follow_scipys_truncnorm():
    torch.manual_seed(0)
    samples = TruncatedNormal(LOC, SCALE).rsample((20000,)).numpy()
    ref = _scipy()
    assert samples.min() > -1 and samples.max() < 1
    for i in range(4):   # Kolmogorov-Smirnov against each truncated normal's CDF
        cdf = stats.truncnorm(ref.a[i], ref.b[i], loc=LOC[i].item(), scale=SCALE[i].item()).cdf
        assert stats.kstest(samples[:, i], cdf).pvalue > 1e-3


def test_the_sample_keeps_its_gradient_where_the_tanh_squashed_one_loses_it():
    """A mean pushed against the bound: the truncated sample still moves with the mean
    (d a / d mu of order 1); tanh-normal's moves by 1 - tanh(u)^2, about 0."""
    torch.manual_seed(0)
    mu = torch.tensor([0.999], requires_grad=True)
    TruncatedNormal(mu, torch.tensor([0.5])).rsample((1000,)).mean().backward()
    assert mu.grad.item() > 0.05
    u = torch.tensor([6.0], requires_grad=True)   # pre-squash mean at tanh's plateau
    torch.tanh(u + 0.5 * torch.randn(1000)).mean().backward()
    assert u.grad.item() < 1e-3


def test_trunc_normal_actor_bounds_its_std_and_acts_in_the_box():
    actor = make_actor("trunc_normal", 5, 2, 16, init_std=5.0)
    assert isinstance(actor, TruncNormalActor)
    with torch.no_grad():
        for layer in actor.net:   # push the network's outputs far out
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(50)
    features = torch.randn(64, 5)
    dist = actor(features)
    std = action_std(dist)
    assert std.min() >= 0.1 - 1e-6 and std.max() <= 2.1 + 1e-6
    a = dist.rsample()
    assert a.shape == (64, 2) and a.abs().max() < 1
    assert torch.allclose(actor.mode(features), dist.base_dist.mode)
    assert isinstance(make_actor("tanh_normal", 5, 2, 16, 5.0), TanhNormalActor)
    with pytest.raises(ValueError, match="trunc_normal"):
        make_actor("beta", 5, 2, 16, 5.0)
