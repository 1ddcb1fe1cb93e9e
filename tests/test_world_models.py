"""Tests for V, M and C of World Models (wmlib.models.vae, .mdnrnn, .controller)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.models.controller import Controller
from wmlib.models.mdnrnn import MDNRNN, MDNParams
from wmlib.models.vae import VAE


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis, keepdims=True))).squeeze(axis)


# ----- V ---------------------------------------------------------------------------------


def test_vae_shapes_and_paper_parameter_count():
    assert num_params(VAE()) == 4_348_547  # Ha & Schmidhuber 2018, CarRacing
    vae = VAE(latent_dim=4, depth=8)
    x = torch.rand(2, 3, 64, 64) - 0.5
    posterior = vae.encode(x)
    assert posterior.loc.shape == posterior.scale.shape == (2, 4)
    x_hat, _ = vae(x)
    assert x_hat.shape == x.shape
    assert vae.sample(3).shape == (3, 3, 64, 64)


@pytest.mark.parametrize("clamp_active", [True, False])
def test_vae_loss_matches_hand_computation(clamp_active: bool):
    torch.manual_seed(0)
    vae = VAE(latent_dim=4, depth=8)
    if not clamp_active:  # push mu far from 0 so that KL >> kl_tolerance * latent_dim = 2
        torch.nn.init.constant_(vae.mu.bias, 3.0)
    x = torch.rand(3, 3, 64, 64) - 0.5

    torch.manual_seed(1)
    out = vae.loss(x)
    torch.manual_seed(1)  # replay the same reparameterisation noise
    posterior = vae.encode(x)
    x_hat = vae.decode(posterior.rsample())

    mu = posterior.loc.detach().numpy().astype(np.float64)
    logvar = 2 * np.log(posterior.scale.detach().numpy().astype(np.float64))
    recon = ((x.numpy() - x_hat.detach().numpy()) ** 2).reshape(3, -1).sum(1)
    kl = -0.5 * (1 + logvar - mu**2 - np.exp(logvar)).sum(1)
    free = 0.5 * 4
    assert (kl < free).all() if clamp_active else (kl > free).all()
    expected = (recon + np.maximum(kl, free)).mean()

    np.testing.assert_allclose(out["recon"].item(), recon.mean(), rtol=1e-5)
    np.testing.assert_allclose(out["kl"].item(), kl.mean(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["loss"].item(), expected, rtol=1e-5)


def squares(n: int, g: torch.Generator) -> torch.Tensor:
    """Black 64x64 frames, each with one 16x16 square of random colour at a random place."""
    x = torch.full((n, 3, 64, 64), -0.5)
    pos = torch.randint(0, 48, (n, 2), generator=g)
    colour = torch.rand(n, 3, generator=g) - 0.5
    for i, (r, c) in enumerate(pos.tolist()):
        x[i, :, r : r + 16, c : c + 16] = colour[i, :, None, None]
    return x


def test_vae_learns_synthetic_frames():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = squares(64, g)
    vae = VAE(latent_dim=8, depth=8)
    opt = torch.optim.Adam(vae.parameters(), 2e-3)

    def recon_error() -> float:
        with torch.no_grad():
            x_hat = vae.decode(vae.encode(data).loc)
        return (data - x_hat).pow(2).flatten(1).sum(1).mean().item()

    start = recon_error()
    for _ in range(300):
        loss = vae.loss(data[torch.randint(0, 64, (16,), generator=g)])["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = recon_error()
    mean_image = (data - data.mean(0)).pow(2).flatten(1).sum(1).mean().item()
    assert end < 0.5 * start
    assert end < mean_image  # z carries where the square is, not just the average frame


# ----- M ---------------------------------------------------------------------------------


def test_mdnrnn_shapes_and_paper_parameter_count():
    # 422,368 in the paper (TensorFlow); PyTorch's LSTM has a second bias vector of 4 * 256.
    assert num_params(MDNRNN(reward_head=False, done_head=False)) == 422_368 + 1024
    m = MDNRNN(latent_dim=4, action_dim=2, hidden=8, n_mixtures=3)
    params, (h, c) = m(torch.randn(5, 7, 4), torch.randn(5, 7, 2))
    for p in params[:3]:
        assert p.shape == (5, 7, 4, 3)
    assert params.reward.shape == params.done.shape == (5, 7)
    assert h.shape == c.shape == (5, 8)


def test_mdnrnn_step_matches_sequence_forward():
    torch.manual_seed(0)
    m = MDNRNN(latent_dim=4, action_dim=2, hidden=8, n_mixtures=3)
    z, a = torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    seq, final = m(z, a)
    hidden = m.initial_state(2)
    for t in range(5):
        params, hidden = m.step(z[:, t], a[:, t], hidden)
        for p_step, p_seq in zip(params, seq):
            torch.testing.assert_close(p_step, p_seq[:, t])
    torch.testing.assert_close(hidden, final)


def test_mdn_nll_matches_hand_mixture_and_mixture_same_family():
    torch.manual_seed(0)
    m = MDNRNN(latent_dim=4, action_dim=2, hidden=8, n_mixtures=3)
    params, _ = m(torch.randn(2, 5, 4), torch.randn(2, 5, 2))
    z_next = torch.randn(2, 5, 4)
    nll = m.mdn_nll(params, z_next).item()

    logits, mu, log_std = (p.detach().numpy().astype(np.float64) for p in params[:3])
    y = z_next.numpy().astype(np.float64)[..., None]
    log_pi = logits - logsumexp(logits, -1)[..., None]
    log_normal = -0.5 * ((y - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    by_hand = -logsumexp(log_pi + log_normal, -1).mean()

    direct = MixtureSameFamily(Categorical(logits=params.logits),
                               Normal(params.mean, params.log_std.exp()))
    np.testing.assert_allclose(nll, by_hand, rtol=1e-5)
    np.testing.assert_allclose(nll, -direct.log_prob(z_next).mean().item(), rtol=1e-6)


def test_temperature_scales_weights_and_stds():
    params = MDNParams(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2), torch.zeros(1, 2),
                       None, None)
    mix = MDNRNN.mixture(params, temperature=0.25)
    probs = torch.softmax(params.logits / 0.25, -1)
    torch.testing.assert_close(mix.mixture_distribution.probs, probs)
    torch.testing.assert_close(mix.component_distribution.scale, torch.full((1, 2), 0.5))


def test_sampling_near_zero_temperature_returns_most_likely_mode():
    torch.manual_seed(0)
    # 3 latent dims, 3 components; the most likely component differs per dimension.
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]))
    mean = torch.tensor([[-3.0, 1.0, 4.0], [2.0, -1.0, 0.5], [0.0, 7.0, -2.0]])
    params = MDNParams(logits.expand(100, 3, 3), mean.expand(100, 3, 3),
                       torch.zeros(100, 3, 3), None, None)
    mode = torch.tensor([1.0, 2.0, -2.0])
    torch.testing.assert_close(MDNRNN.sample(params, 0.0), mode.expand(100, 3))
    cold = MDNRNN.sample(params, 1e-4)
    assert (cold - mode).abs().max() < 0.1
    hot = MDNRNN.sample(params, 1.0)
    assert (hot - mode).abs().max() > 1.0  # at tau = 1 the other components get drawn


def test_mdnrnn_loss_terms():
    torch.manual_seed(0)
    m = MDNRNN(latent_dim=4, action_dim=2, hidden=8, n_mixtures=3)
    z, a, z_next = torch.randn(2, 5, 4), torch.randn(2, 5, 2), torch.randn(2, 5, 4)
    reward, done = torch.randn(2, 5), (torch.rand(2, 5) > 0.5).float()
    out = m.loss(z, a, z_next, reward=reward, done=done)
    params, _ = m(z, a)
    p_done = torch.sigmoid(params.done)
    bce = -(done * p_done.log() + (1 - done) * (1 - p_done).log()).mean()
    torch.testing.assert_close(out["nll"], m.mdn_nll(params, z_next))
    torch.testing.assert_close(out["reward"], (params.reward - reward).pow(2).mean())
    torch.testing.assert_close(out["done"], bce)
    torch.testing.assert_close(out["loss"], out["nll"] + out["reward"] + out["done"])
    assert set(m.loss(z, a, z_next)) == {"loss", "nll"}
    with pytest.raises(ValueError):
        MDNRNN(4, 2, 8, 3, reward_head=False).loss(z, a, z_next, reward=reward)


def test_mdnrnn_learns_bimodal_sequences():
    """z_{t+1} = z_t / 2 +- 1 + 0.1 noise, sign a coin flip per dimension: one Gaussian cannot
    do better than an NLL of 1/2 log(2 pi e 1.01) ~ 1.42 per dimension, a mixture reaches ~ -0.19.
    """
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    def batch(b: int = 32, t: int = 10):
        z = torch.zeros(b, t + 1, 2)
        for i in range(t):
            sign = torch.randint(0, 2, (b, 2), generator=g).float() * 2 - 1
            z[:, i + 1] = 0.5 * z[:, i] + sign + 0.1 * torch.randn(b, 2, generator=g)
        return z[:, :-1], torch.randn(b, t, 1, generator=g), z[:, 1:]

    m = MDNRNN(latent_dim=2, action_dim=1, hidden=32, n_mixtures=3)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    z, a, z_next = batch(256)

    def evaluate() -> dict[str, float]:
        with torch.no_grad():
            out = m.loss(z, a, z_next, reward=z[..., 0], done=(z[..., 1] > 0).float())
        return {k: v.item() for k, v in out.items()}

    start = evaluate()
    for _ in range(300):
        zb, ab, zb_next = batch()
        loss = m.loss(zb, ab, zb_next, reward=zb[..., 0], done=(zb[..., 1] > 0).float())["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = evaluate()
    assert end["nll"] < 0.7 < start["nll"]  # below the best single Gaussian: both modes found
    assert end["reward"] < 0.2 * start["reward"]
    assert end["done"] < 0.5 * start["done"]


# ----- C ---------------------------------------------------------------------------------


def test_controller_parameter_count_and_round_trip():
    c = Controller()
    assert c.num_params == 867 == (32 + 256) * 3 + 3
    assert Controller(use_hidden=False).num_params == 99 == 32 * 3 + 3
    theta = np.random.default_rng(0).normal(size=867)
    c.set_params(theta)
    np.testing.assert_array_equal(c.get_params(), theta)
    with pytest.raises(ValueError):
        c.set_params(np.zeros(99))


def test_controller_output_ranges_and_inputs():
    rng = np.random.default_rng(0)
    c = Controller()
    c.set_params(10 * rng.normal(size=c.num_params))  # large weights saturate the tanh
    z, h = rng.normal(size=(1000, 32)), rng.normal(size=(1000, 256))
    a = c(z, h)
    assert a.shape == (1000, 3)
    assert a[:, 0].min() < -0.9 and a[:, 0].max() > 0.9 and (np.abs(a[:, 0]) <= 1).all()
    for gas_or_brake in (a[:, 1], a[:, 2]):
        assert gas_or_brake.min() >= 0 and gas_or_brake.max() <= 1
        assert gas_or_brake.min() < 0.1 and gas_or_brake.max() > 0.9

    x = np.concatenate([z[0], h[0]])
    y = np.tanh(c.W @ x + c.b)
    np.testing.assert_allclose(c(z[0], h[0]), [y[0], (y[1] + 1) / 2, max(y[2], 0)])
    affine = Controller(brake_clip=False)
    affine.set_params(c.get_params())
    np.testing.assert_allclose(affine(z[0], h[0]), [y[0], (y[1] + 1) / 2, (y[2] + 1) / 2])
    np.testing.assert_allclose(c(torch.tensor(z[:5]), torch.tensor(h[:5])), a[:5])

    z_only = Controller(use_hidden=False)
    np.testing.assert_allclose(z_only(z[0]), [0.0, 0.5, 0.0])  # zero init: straight, half gas
    with pytest.raises(ValueError):
        c(z[0])


def test_m_is_not_trained_on_the_padding_past_a_short_rollout():
    """A rollout of 4 frames in windows of 8 steps: `sequence_batch` pads with the last step
    (its reward and done = 1, five more times) and masks it; the masked loss equals the loss on
    the 3 real steps alone (the LSTM is causal), while an unmasked loss counts the padding."""
    from wmlib.agents.world_models import sequence_batch

    g = np.random.default_rng(0)
    L, Z = 4, 4
    series = {"starts": np.array([0, L]), "mu": g.normal(size=(L, Z)).astype(np.float32),
              "logvar": np.full((L, Z), -2.0, np.float32),
              "action": g.uniform(-1, 1, (L, 2)).astype(np.float32),
              "reward": np.array([0.0, 1.0, 0.5, -3.0], np.float32),
              "done": np.array([0, 0, 0, 1], bool)}
    b = sequence_batch(series, batch=2, seq_len=8, rng=g, sample_z=False)
    assert b["mask"].tolist() == [[1.0] * 3 + [0.0] * 5] * 2
    assert (b["reward"][:, 3:] == -3).all() and (b["done"][:, 3:] == 1).all()  # the padding
    torch.manual_seed(0)
    m = MDNRNN(Z, 2, 8, 3)
    args = ("z", "action", "z_next")
    masked = m.loss(*(b[k] for k in args), reward=b["reward"], done=b["done"], mask=b["mask"])
    real = m.loss(*(b[k][:, :3] for k in args), reward=b["reward"][:, :3],
                  done=b["done"][:, :3])
    for k in ("nll", "reward", "done", "loss"):
        torch.testing.assert_close(masked[k], real[k])
    unmasked = m.loss(*(b[k] for k in args), reward=b["reward"], done=b["done"])
    for k in ("nll", "reward", "done"):
        assert abs(unmasked[k] - masked[k]) > 0.05 * abs(masked[k]), k
