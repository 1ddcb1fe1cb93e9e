"""BIRD and Soft-BIRD (chapter 6): each term of eq. 10 and eq. 12 against a direct computation,
the FIFO replay, the options as the only difference from Dreamer, and the imagination gap.
The learning test is shared with Dreamer's (tests/test_dreamer.py, versions bird and soft-bird).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from synthetic import synthetic_batch  # tests/synthetic.py (tests/ is on sys.path)
from torch.distributions import Independent, Normal

from wmlib.agents import bird as B
from wmlib.agents.dreamer import CONFIGS as DREAMER_CONFIGS
from wmlib.agents.dreamer import Dreamer
from wmlib.models.actor_critic import TanhNormalActor
from wmlib.models.rssm import State
from wmlib.objectives import lambda_return
from wmlib.replay import Replay

SMOKE = B.CONFIGS["smoke"]


def test_confidence_weights_are_normalised_per_batch_clipped_and_carry_no_gradient():
    x = torch.tensor([-30.0, -10.0, -12.0, 5.0, -11.0, -100.0], requires_grad=True)
    w = B.confidence_weights(x, clip=1.0)
    xs = x.detach().numpy().astype(np.float64)
    expected = np.clip((xs - xs.mean()) / (xs.std() + 1e-9) + 1, 0.0, 2.0)  # population std
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5)
    assert not w.requires_grad
    assert w.min() == 0.0 and w.max() < 2.0  # -100 is clipped at 1 - c = 0
    w_half = B.confidence_weights(x, clip=0.5)
    np.testing.assert_allclose(w_half.numpy(), np.clip(expected, 0.5, 1.5), rtol=1e-5)
    # Equal confidence everywhere: every trajectory weighs 1 (Dreamer's objective).
    torch.testing.assert_close(B.confidence_weights(torch.full((5,), -3.0)), torch.ones(5))


def test_trajectory_log_likelihood_sums_the_prior_log_density_of_each_sampled_latent():
    g = torch.Generator().manual_seed(0)
    H, N, S = 4, 3, 5
    mean, std = torch.randn(H, N, S, generator=g), torch.rand(H, N, S, generator=g) + 0.1
    stoch = mean + std * torch.randn(H, N, S, generator=g)
    imagined = State(mean, std, stoch, torch.zeros(H, N, 7))
    expected = np.zeros(N)
    for t in range(H):
        for n in range(N):
            m, s, z = (a[t, n].double().numpy() for a in (mean, std, stoch))
            expected[n] += np.sum(-0.5 * ((z - m) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(B.trajectory_log_likelihood(imagined).numpy(), expected,
                               rtol=1e-5)
    # Categorical latents (DreamerV2): the log-probability of each one-hot class drawn.
    logits = torch.randn(H, N, 2, 3, generator=g)
    idx = torch.randint(0, 3, (H, N, 2), generator=g)
    onehot = torch.nn.functional.one_hot(idx, 3).float()
    cat = State(logits, torch.zeros(H, N, 0), onehot.flatten(-2), torch.zeros(H, N, 7))
    logp = torch.log_softmax(logits, -1).gather(-1, idx[..., None]).squeeze(-1)
    torch.testing.assert_close(B.trajectory_log_likelihood(cat), logp.sum((0, 2)))


def test_policy_entropy_is_the_gaussians_closed_form_and_estimates_the_tanh_gaussians():
    std = torch.tensor([[0.5, 2.0]])
    gauss = Independent(Normal(torch.zeros(1, 2), std), 1)
    expected = (0.5 * torch.log(2 * math.pi * math.e * std ** 2)).sum(-1)  # eq. 10's form
    torch.testing.assert_close(B.policy_entropy(gauss), expected)
    # The squashed Gaussian: H(tanh u) = H(u) + E[log(1 - tanh(u)^2)], estimated here with
    # 200k independent samples in float64, against the agent's 4000-sample estimate.
    torch.manual_seed(0)
    actor = TanhNormalActor(3, 2, hidden=8, init_std=1.0)
    features = torch.randn(1, 3)
    dist = actor(features)
    base = dist.base_dist.base_dist
    u = Normal(base.loc.double(), base.scale.double()).sample((200_000,))
    reference = (Normal(base.loc.double(), base.scale.double()).entropy().sum(-1)
                 + torch.log1p(-torch.tanh(u) ** 2).sum(-1).mean(0))
    estimate = B.policy_entropy(dist, samples=4000)
    assert abs(estimate.item() - reference.item()) < 0.05, (estimate, reference)
    estimate.sum().backward()  # differentiable in the actor's parameters
    assert all(p.grad is not None for p in actor.parameters())


def test_soft_birds_value_target_on_a_hand_case():
    """Eq. 12 with lambda = 1, gamma = 0.9, alpha = 0.5, two steps, rewards 1 and 2, entropies
    0.4 and 0.2, bootstrap v'(s_2) = 10: V_1 = 2 + 0.5 * 0.2 + 0.9 * 10 = 11.1,
    V_0 = 1 + 0.5 * 0.4 + 0.9 * 11.1 = 11.19."""
    rewards = B.soft_rewards(torch.tensor([1.0, 2.0]), torch.tensor([0.4, 0.2]), alpha=0.5)
    lam = lambda_return(rewards, torch.tensor([0.0, 0.0]), torch.full((2,), 0.9),
                        torch.tensor(10.0), lambda_=1.0)
    torch.testing.assert_close(lam, torch.tensor([11.19, 11.1]))


def test_soft_bird_adds_the_scaled_entropy_to_the_imagined_rewards():
    torch.manual_seed(0)
    cfg = B.soft_bird(SMOKE, alpha=0.5)
    cfg = dataclasses.replace(cfg, entropy_samples=2000)
    d = B.BIRD(cfg, action_size=1)
    features = torch.randn(3, 2, d.world.dynamics.feature_size)
    plain = d.world.predict_reward(features)
    torch.manual_seed(1)
    soft = d.imagined_rewards(features)
    torch.manual_seed(1)
    entropy = B.policy_entropy(d.actor(features), 2000)
    torch.testing.assert_close(soft, plain + 0.5 * entropy)
    assert cfg.confidence is False and cfg.entropy_weight == 0.0


def test_with_its_options_off_bird_is_dreamer():
    """BIRD is Dreamer plus two terms: with confidence off and w = 0 its losses are Dreamer's
    (same seed, same weights); with them on, the actor's loss changes and the weights are the
    discounts times the confidence."""
    off = dataclasses.replace(SMOKE, confidence=False, entropy_weight=0.0)
    torch.manual_seed(0)
    bird = B.BIRD(off, action_size=1)
    torch.manual_seed(0)
    dreamer = Dreamer(DREAMER_CONFIGS["smoke"], action_size=1)
    dreamer.load_state_dict(bird.state_dict())
    batch = synthetic_batch()
    losses = []
    for model in (bird, dreamer):
        torch.manual_seed(3)
        _, _, post = model.world.loss(*model.world.prepare(batch))
        loss, imagined, lam, weights = model.actor_loss(post)
        losses.append((loss, model.value_loss(imagined, lam, weights)))
    torch.testing.assert_close(losses[0], losses[1])

    bird.cfg = SMOKE  # the options on
    torch.manual_seed(3)
    _, _, post = bird.world.loss(*bird.world.prepare(batch))
    loss, imagined, lam, weights = bird.actor_loss(post)
    conf = bird.last_confidence
    assert conf.shape == (weights.shape[1],) and not weights.requires_grad
    torch.testing.assert_close(weights, bird.last_plain_weights * conf)
    assert bird.last_entropy is not None and torch.isfinite(loss)


def test_the_entropy_term_uses_real_states_and_trains_only_the_actor():
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, confidence=False, entropy_weight=1.0)
    d = B.BIRD(cfg, action_size=1)
    _, _, post = d.world.loss(*d.world.prepare(synthetic_batch()))
    seen = []
    original = d.actor.forward
    d.actor.forward = lambda f: (seen.append(f.shape), original(f))[1]
    loss, *_ = d.actor_loss(post)
    assert seen[-1] == post.features().shape  # the posterior (real) states of the batch
    loss.backward()
    assert all(p.grad is not None for p in d.actor.parameters())
    assert all(p.grad is None for p in d.world.parameters())
    assert all(p.grad is None for p in d.value.parameters())


def test_birds_fifo_replay_drops_the_oldest_episodes_at_capacity():
    cfg = B.CONFIGS["quick"]
    assert cfg.replay_capacity == B.QUICK_CAPACITY == 30 * 126
    assert B.CONFIGS["full"].replay_capacity == 100 * 501  # 100k env steps at repeat 2
    replay = Replay(capacity=cfg.replay_capacity)
    for i in range(40):
        replay.add({"obs": np.full((126, 5), i, np.float32), "action": np.zeros((126, 1)),
                    "reward": np.zeros(126)})
    assert len(replay) == 30
    assert [int(ep["obs"][0, 0]) for ep in replay.episodes] == list(range(10, 40))


def test_the_imagination_gap_compares_h_step_reward_sums_on_the_same_episode():
    torch.manual_seed(0)
    cfg = dataclasses.replace(DREAMER_CONFIGS["smoke"], pixels=False, horizon=3)
    d = Dreamer(cfg, action_size=1, obs_shape=(5,))
    T = 12
    g = np.random.default_rng(0)
    episode = {"obs": g.normal(size=(T, 5)).astype(np.float32),
               "action": g.uniform(-1, 1, (T, 1)).astype(np.float32),
               "reward": np.arange(T, dtype=np.float32)}
    gap = d.imagination_gap(episode)
    # Real 3-step sums from every start t = 0..8: rewards t+1..t+3 = 3t + 6, mean over t.
    assert gap["gap_real"] == pytest.approx(np.mean([3 * t + 6 for t in range(T - 3)]))
    assert gap["gap_abs"] >= abs(gap["gap_imagined"] - gap["gap_real"]) - 1e-6
    torch.manual_seed(1)
    steps = d.imagination_gap(episode, per_step=True)
    assert steps["real_per_step"].tolist() == [3 * t + 6 for t in range(T - 3)]
    assert steps["imagined_per_step"].mean() == pytest.approx(steps["gap_imagined"], rel=1e-5)
    with pytest.raises(ValueError, match="too short"):
        d.imagination_gap({k: v[:3] for k, v in episode.items()})


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="soft-bird"):
        B.train("smoke", variant="hard-bird")


def test_env_steps_keep_counting_when_the_fifo_replay_forgets_and_across_a_resume(tmp_path):
    """Smoke episodes of 10 decisions at action repeat 2 (11 stored frames): a FIFO of 25
    stored steps keeps 2 episodes, yet the history counts every environment step collected."""
    cfg = dataclasses.replace(SMOKE, pixels=False, replay_capacity=25, episodes=4, eval_every=0)
    agent = B.BIRDAgent(cfg, run_dir=tmp_path, seed=0, device="cpu")
    agent.train(2, progress=False, echo=False)
    assert len(agent.replay) == 2
    again = B.BIRDAgent(cfg, run_dir=tmp_path, seed=0, device="cpu")
    again.train(4, progress=False, echo=False)  # resumes after round 2
    steps = again.history["env_steps"][1]
    seed_steps = cfg.seed_episodes * cfg.max_steps * cfg.action_repeat
    assert steps == [seed_steps + (i + 1) * cfg.max_steps * cfg.action_repeat for i in range(4)]
    assert len(again.replay) == 2


def test_dreamer_fifo_is_dreamer_with_birds_replay_only():
    cfg = B.VARIANTS["dreamer-fifo"](B.CONFIGS["quick"])
    assert (cfg.confidence, cfg.entropy_weight, cfg.soft_alpha) == (False, 0.0, 0.0)
    assert cfg.replay_capacity == B.QUICK_CAPACITY
    assert B.DREAMER_CONFIGS["quick"].replay_capacity > 100 * cfg.replay_capacity
