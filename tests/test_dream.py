"""The dream (wmlib.dream): M as a Gymnasium environment, and the batched dream of CMA-ES."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch.distributions import Categorical, MixtureSameFamily, Normal

from wmlib.dream import DreamEnv, dream_returns, sample_mixture
from wmlib.models.controller import Controller
from wmlib.models.mdnrnn import MDNRNN, MDNParams
from wmlib.models.vae import VAE


def small_m(seed: int = 0) -> MDNRNN:
    torch.manual_seed(seed)
    return MDNRNN(latent_dim=4, action_dim=3, hidden=8, n_mixtures=3)


def test_dream_env_follows_the_gymnasium_api():
    env = DreamEnv(small_m(), torch.randn(5, 4), temperature=1.0, max_steps=20,
                   vae=VAE(latent_dim=4, depth=4))
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (12,) and obs.dtype == np.float32 and env.observation_space.contains(obs)
    assert env.render().shape == (64, 64, 3)
    steps, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert isinstance(reward, float) and 0 <= info["p_done"] <= 1
        steps += 1
    assert steps <= 20


def test_dream_env_is_reproducible_with_a_seed():
    env = DreamEnv(small_m(), torch.randn(5, 4), temperature=1.2)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=3)
        traj = [obs]
        for _ in range(5):
            traj.append(env.step(np.array([0.1, 0.5, 0.0], np.float32))[0])
        runs.append(np.stack(traj))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_dream_env_rejects_bad_input():
    m = small_m()
    with pytest.raises(ValueError, match="temperature"):
        DreamEnv(m, torch.randn(5, 4), temperature=-1)
    with pytest.raises(ValueError, match="initial_z"):
        DreamEnv(m, torch.randn(5, 3))
    with pytest.raises(ValueError, match="reward head"):
        DreamEnv(MDNRNN(4, 3, 8, 3, reward_head=False), torch.randn(5, 4))
    env = DreamEnv(m, torch.randn(5, 4))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(3, np.float32))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="vae"):
        env.render()


def test_batched_dream_matches_the_gym_env_step_for_step():
    """At temperature 0 the dream is deterministic: the batched returns of each controller must
    equal the returns of DreamEnv driven by the numpy Controller."""
    m = small_m(1)
    z0 = torch.randn(2, 4)
    rng = np.random.default_rng(0)
    for use_hidden in (True, False):
        c = Controller(latent_dim=4, hidden_dim=8, use_hidden=use_hidden)
        params = rng.normal(size=(3, c.num_params))
        batched = dream_returns(m, params, z0, use_hidden=use_hidden, temperature=0.0,
                                steps=15, done_threshold=1.1)
        for p in range(3):
            c.set_params(params[p])
            for r in range(2):
                env = DreamEnv(m, z0[r : r + 1], temperature=0.0, max_steps=15,
                               done_threshold=1.1)
                obs, _ = env.reset(seed=0)
                total, done = 0.0, False
                while not done:
                    a = c(obs[:4], obs[4:]) if use_hidden else c(obs[:4])
                    obs, reward, term, trunc, _ = env.step(a.astype(np.float32))
                    total += reward
                    done = term or trunc
                np.testing.assert_allclose(batched[p, r], total, rtol=1e-4, atol=1e-4)


def test_batched_dream_stops_collecting_reward_when_done():
    m = small_m(2)
    torch.nn.init.constant_(m.done.bias, 10.0)  # p(done) ~ 1 from the first step
    torch.nn.init.zeros_(m.done.weight)
    c = Controller(latent_dim=4, hidden_dim=8)
    one = dream_returns(m, np.zeros((1, c.num_params)), torch.zeros(1, 4), steps=1,
                        temperature=0.0)
    many = dream_returns(m, np.zeros((1, c.num_params)), torch.zeros(1, 4), steps=50,
                         temperature=0.0)
    np.testing.assert_allclose(one, many)
    with pytest.raises(ValueError, match="parameters"):
        dream_returns(m, np.zeros((1, 5)), torch.zeros(1, 4))


def test_sample_mixture_modes_and_moments():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3], [0.7, 0.2, 0.1]]))
    mean = torch.tensor([[-3.0, 1.0, 4.0], [2.0, -1.0, 0.5]])
    log_std = torch.log(torch.tensor([[0.5, 0.2, 1.0], [0.3, 0.4, 0.5]]))
    n = 40000
    params = MDNParams(logits.expand(n, 2, 3), mean.expand(n, 2, 3), log_std.expand(n, 2, 3),
                       None, None)
    torch.testing.assert_close(sample_mixture(params, 0.0)[0], torch.tensor([1.0, 2.0]))
    g = torch.Generator().manual_seed(0)
    cold = sample_mixture(params, 1e-4, g)
    assert (cold - torch.tensor([1.0, 2.0])).abs().max() < 0.05
    x = sample_mixture(params, 1.0, g)
    ref = MixtureSameFamily(Categorical(logits=logits), Normal(mean, log_std.exp()))
    torch.testing.assert_close(x.mean(0), ref.mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.var(0), ref.variance, atol=0.15, rtol=0.03)
    with pytest.raises(ValueError):
        sample_mixture(params, -0.5)
