"""Dreamer (wmlib.agents.dreamer): the actor's distribution, which networks each loss trains,
the loop around it, and a learning test in imagination."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from synthetic import synthetic_batch  # tests/synthetic.py (tests/ is on sys.path)

from wmlib.agents.dreamer import CONFIGS, Dreamer, DreamerAgent, DreamerPolicy, step
from wmlib.models.actor_critic import TanhNormalActor
from wmlib.training import CheckpointMismatch

SMOKE = CONFIGS["smoke"]


def test_the_actor_squashes_a_gaussian_into_the_action_box():
    torch.manual_seed(0)
    actor = TanhNormalActor(6, 2, hidden=16, init_std=5.0)
    with torch.no_grad():
        actor.net[-1].weight.zero_()
        actor.net[-1].bias.zero_()
    dist = actor(torch.randn(1000, 6))
    a = dist.sample()
    assert a.shape == (1000, 2) and a.abs().max() <= 1
    # zero output: pre-squash mean 0 and std softplus(raw_init) + min_std = 5
    base = dist.base_dist.base_dist
    torch.testing.assert_close(base.scale, torch.full((1000, 2), 5.0 + 1e-4))
    torch.testing.assert_close(actor.mode(torch.randn(3, 6)), torch.zeros(3, 2))
    # the log-density of the squashed Gaussian, by the change of variables
    u = torch.tensor([[0.3, -1.2]])
    x = torch.tanh(u)
    expected = (torch.distributions.Normal(0.0, 5.0 + 1e-4).log_prob(u)
                - torch.log(1 - x ** 2)).sum()
    torch.testing.assert_close(actor(torch.zeros(1, 6)).log_prob(x)[0], expected,
                               rtol=1e-4, atol=1e-4)


def grads(module):
    return [p.grad for p in module.parameters()]


def test_each_loss_trains_only_its_own_networks():
    torch.manual_seed(0)
    d = Dreamer(SMOKE, action_size=1)
    _, _, posteriors = d.world.loss(*d.world.prepare(synthetic_batch()))
    actor_loss, imagined, lam, weights = d.actor_loss(posteriors)
    actor_loss.backward()
    assert all(g is not None and g.abs().sum() > 0 for g in grads(d.actor))
    assert all(g is None for g in grads(d.world)) and all(g is None for g in grads(d.value))
    d.zero_grad(set_to_none=True)
    d.value_loss(imagined, lam, weights).backward()
    assert all(g is not None for g in grads(d.value))
    assert all(g is None for g in grads(d.world)) and all(g is None for g in grads(d.actor))
    assert lam.shape == (SMOKE.horizon - 1, SMOKE.chunk_length * 4)
    torch.testing.assert_close(weights[:, 0], SMOKE.discount ** torch.arange(
        SMOKE.horizon - 1, dtype=torch.float32))


def test_the_actor_loss_differentiates_through_the_learned_dynamics():
    """Dreamer's actor gradient flows through the imagined states: with the reward head
    zeroed and the value reading the state, the actor still gets a gradient, and it vanishes
    when the dynamics ignore the action."""
    torch.manual_seed(0)
    d = Dreamer(SMOKE, action_size=1)
    _, _, posteriors = d.world.loss(*d.world.prepare(synthetic_batch()))
    d.world.reward[-1].weight.data.zero_()
    d.world.reward[-1].bias.data.zero_()
    d.actor_loss(posteriors)[0].backward()
    assert sum(g.abs().sum() for g in grads(d.actor)) > 0
    d.zero_grad(set_to_none=True)
    cell_in = d.world.dynamics.cell_in[0]
    A = d.world.action_size
    cell_in.weight.data[:, -A:] = 0.0  # h_t no longer depends on a_{t-1}
    d.actor_loss(posteriors)[0].backward()
    assert all(g is None or g.abs().sum() == 0 for g in grads(d.actor))


def test_the_policy_samples_with_noise_and_evaluates_with_the_mode():
    torch.manual_seed(0)
    d = Dreamer(SMOKE, action_size=1)
    frame = np.zeros((3, 64, 64), np.uint8)
    explore, greedy = DreamerPolicy(d, noise=0.3, seed=0), DreamerPolicy(d, noise=0.0)
    a = [explore(frame) for _ in range(5)]
    assert all(x.shape == (1,) and abs(x[0]) <= 1 for x in a) and len({x[0] for x in a}) > 1
    greedy.reset()
    action = greedy(frame)  # the actor's mode in the filtered belief
    with torch.no_grad():
        mode = d.actor.mode(greedy.state.features())[0].numpy()
    np.testing.assert_array_equal(action, mode)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dreamer")
    agent = DreamerAgent(SMOKE, run_dir=run_dir, seed=0, device="cpu")
    agent.train(progress=False, echo=False)
    return agent, run_dir


def test_the_agent_trains_checkpoints_and_resumes(smoke_run):
    agent, run_dir = smoke_run
    h = agent.history
    assert len(h["return"][1]) == SMOKE.episodes and len(h["eval_return"][1]) == 1
    for key in ("loss", "actor_loss", "value_loss", "imagined_return"):
        assert key in h and all(math.isfinite(v) for v in h[key][1])
    assert (run_dir / "checkpoint.pt").exists() and any((run_dir / "replay").iterdir())
    again = DreamerAgent(SMOKE, run_dir=run_dir, seed=0, device="cpu")
    again.train(progress=False, echo=False)  # nothing left to do: loads and returns
    assert again.history["return"] == h["return"]
    for a, b in zip(agent.dreamer.parameters(), again.dreamer.parameters()):
        torch.testing.assert_close(a, b)
    other = DreamerAgent(dataclasses.replace(SMOKE, units=17), seed=0, device="cpu")
    with pytest.raises(CheckpointMismatch, match="units"):
        other.load(run_dir / "checkpoint.pt")


@pytest.mark.slow
@pytest.mark.parametrize("version", ["dreamer", "dreamerv2", "dreamerv3", "bird", "soft-bird"])
def test_dreamer_learns_in_imagination_to_push_the_square_right(version):
    """The learning test: on the moving-square task (reward = how far right the square is), a
    world model fitted to random data and an actor trained only in its imagination push
    right from a filtered belief; the untrained actor does not. DreamerV2: categorical
    latents, KL balancing, the target critic, entropy and half REINFORCE. BIRD (chapter 6):
    confidence-weighted returns and the entropy on real states; Soft-BIRD: soft rewards.
    DreamerV3 (chapter 7): every option of `dreamer.dreamerv3` (symlog, two-hot, return
    normalisation, free bits, unimix, the EMA critic, LayerNorm and SiLU)."""
    from wmlib.agents.bird import BIRD, bird_config, soft_bird
    from wmlib.agents.dreamer import dreamerv2, dreamerv3
    from wmlib.dreamerv3 import ema_update

    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, depth=8, stoch_size=8, deter_size=32, hidden_size=32,
                              units=64, free_nats=1.0, lr=3e-3, actor_lr=1e-3, value_lr=1e-3,
                              horizon=6)
    if version == "dreamerv2":
        cfg = dreamerv2(cfg, stoch_size=8, classes=8, lr=3e-3, slow_target_every=10,
                        actor_grad_mix=0.5)
    if version == "dreamerv3":
        cfg = dreamerv3(cfg, stoch_size=8, classes=8)
    if version in ("bird", "soft-bird"):
        cfg = bird_config(cfg, entropy_samples=8)
        cfg = soft_bird(cfg) if version == "soft-bird" else cfg
    d = (BIRD if version in ("bird", "soft-bird") else Dreamer)(cfg, action_size=1)
    opts = {name: torch.optim.Adam(getattr(d, name).parameters(), lr=lr)
            for name, lr in (("world", cfg.lr), ("actor", cfg.actor_lr),
                             ("value", cfg.value_lr))}
    data = [d.world.prepare(synthetic_batch(T=8, B=8, seed=s)) for s in range(8)]
    held_out = d.world.prepare(synthetic_batch(T=8, B=8, seed=100))

    def first_actions():
        with torch.no_grad():
            posteriors, _ = d.world.dynamics.observe(d.world.embed(held_out[0]), held_out[1])
            return d.actor.mode(posteriors[-1].features())

    before = first_actions()
    for i in range(240):
        loss, _, posteriors = d.world.loss(*data[i % len(data)])
        step(opts["world"], loss, d.world, cfg.grad_clip)
        if i >= 80:  # behaviour learning once the model has seen the data a few times
            actor_loss, imagined, lam, weights = d.actor_loss(posteriors)
            step(opts["actor"], actor_loss, d.actor, cfg.grad_clip)
            step(opts["value"], d.value_loss(imagined, lam, weights), d.value, cfg.grad_clip)
            if cfg.slow_target_every and i % cfg.slow_target_every == 0:
                d.update_target()
            if d.value_ema is not None:
                ema_update(d.value_ema, d.value, cfg.critic_ema)
    after = first_actions()
    assert after.mean() > 0.5, after.flatten()
    assert before.mean() < 0.3, before.flatten()


def test_categorical_latents_are_one_hot_with_straight_through_gradients():
    from wmlib.models.rssm import LatentDynamics
    from wmlib.objectives import kl

    torch.manual_seed(0)
    dyn = LatentDynamics(2, 16, "rssm", stoch_size=4, deter_size=8, hidden_size=8, classes=3)
    embed = torch.randn(5, 2, 16, requires_grad=True)
    posts, priors = dyn.observe(embed, torch.randn(5, 2, 2))
    assert posts.stoch.shape == (5, 2, 12) and posts.features().shape == (5, 2, 20)
    one_hot = posts.stoch.unflatten(-1, (4, 3))
    assert set(one_hot.detach().unique().tolist()) <= {0.0, 1.0}
    assert (one_hot.sum(-1) == 1).all()
    # straight-through: the one-hot sample passes the softmax's gradient to the logits
    (posts.stoch * torch.randn_like(posts.stoch)).sum().backward()
    assert embed.grad.abs().sum() > 0
    # KL of the V categoricals, by hand: sum_v sum_c q log(q / p)
    q, p = posts.mean.softmax(-1), priors.mean.softmax(-1)
    by_hand = (q * (q.log() - p.log())).sum((-2, -1))
    torch.testing.assert_close(kl(posts, priors), by_hand)
    with pytest.raises(ValueError, match="kind='rssm'"):
        LatentDynamics(2, 16, "ssm", classes=3)


def test_dreamerv2_reinforce_trains_the_actor_without_the_dynamics_gradient():
    """With rho = 1 the actor learns from log pi(a | s) times the advantage, not through the
    model: it keeps a gradient when the dynamics ignore the action (where rho = 0 has none)."""
    from wmlib.agents.dreamer import dreamerv2

    torch.manual_seed(0)
    cfg = dreamerv2(SMOKE, stoch_size=4, classes=4, actor_grad_mix=1.0, actor_entropy=0.0)
    d = Dreamer(cfg, action_size=1)
    _, _, posteriors = d.world.loss(*d.world.prepare(synthetic_batch()))
    d.world.dynamics.cell_in[0].weight.data[:, -1:] = 0.0  # h_t no longer depends on a_{t-1}
    loss = d.actor_loss(posteriors)[0]
    assert torch.isfinite(loss)
    loss.backward()
    assert sum(g.abs().sum() for g in grads(d.actor)) > 0


def test_the_target_critic_bootstraps_the_returns_and_follows_the_critic():
    from wmlib.agents.dreamer import dreamerv2

    torch.manual_seed(0)
    cfg = dreamerv2(SMOKE, stoch_size=4, classes=4, slow_target_every=2)
    d = Dreamer(cfg, action_size=1)
    assert all(not p.requires_grad for p in d.target_value.parameters())
    _, _, posteriors = d.world.loss(*d.world.prepare(synthetic_batch()))
    imagined, _ = d.imagine(posteriors)
    lam_before = d.returns(imagined)[0]
    with torch.no_grad():
        for p in d.value.parameters():
            p.add_(1.0)  # the critic moves; the returns still read the target critic
    torch.testing.assert_close(d.returns(imagined)[0], lam_before)
    d.update_target()
    assert not torch.allclose(d.returns(imagined)[0], lam_before)


@pytest.mark.slow
def test_dreamerv2_agent_runs_a_smoke_round_with_every_option(tmp_path):
    from wmlib.agents.dreamer import dreamerv2

    cfg = dreamerv2(SMOKE, stoch_size=4, classes=4, actor_grad_mix=0.5, slow_target_every=2)
    agent = DreamerAgent(cfg, run_dir=tmp_path, seed=0, device="cpu")
    agent.train(progress=False, echo=False)
    h = agent.history
    assert all(math.isfinite(v) for k in ("loss", "actor_loss", "value_loss") for v in h[k][1])
    assert agent.updates == cfg.collect_interval * cfg.episodes
    torch.testing.assert_close(agent.dreamer.target_value.net[0].weight,
                               agent.dreamer.value.net[0].weight)


def test_dreamer_learns_from_the_proprioceptive_state_with_mlp_encoder_and_decoder(tmp_path):
    """``pixels=False``: the same agent on the flat state, with MLPs in place of the convs."""
    cfg = dataclasses.replace(SMOKE, pixels=False)
    agent = DreamerAgent(cfg, run_dir=tmp_path, seed=0, device="cpu")
    world = agent.dreamer.world
    assert world.obs_shape == (5,) and isinstance(world.encoder, torch.nn.Sequential)
    agent.train(progress=False, echo=False)
    ep = agent.replay.episodes[0]
    assert ep["obs"].shape[1:] == (5,) and ep["obs"].dtype == np.float32
    assert all(math.isfinite(v) for k in ("recon", "actor_loss") for v in agent.history[k][1])
    # a pixel frame given to a state model is refused with a message that says what to do
    with pytest.raises(ValueError, match=r"state observations of shape \(\.\.\., 5\)"):
        world.preprocess(np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="pixels=False"):
        Dreamer(SMOKE, action_size=1, obs_shape=(5,))


def test_the_discount_predictor_discounts_imagination_and_learns_terminal_flags():
    """DreamerV2's discount head: with a predicted continuation of ~0 the lambda-return is the
    immediate reward (hand-computed: V = r + gamma * c * (...) with c = 0), and its loss trains
    the head towards the replay's discount flags."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, pred_discount=True)
    d = Dreamer(cfg, action_size=1)
    batch = synthetic_batch()
    # the episode "ends" where the square reaches the right edge: learnable from the frame
    batch["discount"] = (batch["reward"] < 0.7).astype(np.float32)
    assert 0 < batch["discount"].mean() < 1
    _, metrics, posteriors = d.world_loss(batch)
    assert "discount_loss" in metrics
    with torch.no_grad():
        d.discount_head[-1].bias.fill_(-30.0)
        d.discount_head[-1].weight.zero_()
        imagined, _ = d.imagine(posteriors)
        lam, _, weights = d.returns(imagined)
        rewards = d.world.predict_reward(imagined.features())
    torch.testing.assert_close(lam, rewards[:-1])
    assert weights[1:].abs().max() < 1e-6  # nothing after the first step counts
    # a few steps of the world model's optimiser lower the discount loss
    d = Dreamer(cfg, action_size=1)
    optim = torch.optim.Adam(torch.nn.ModuleList(d.world_modules()).parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        loss, metrics, _ = d.world_loss(batch)
        step(optim, loss, torch.nn.ModuleList(d.world_modules()), 100.0)
        losses.append(metrics["discount_loss"].item())
    p = batch["discount"].mean()
    constant = -(p * np.log(p) + (1 - p) * np.log(1 - p))  # the best flag-blind prediction
    assert losses[-1] < 0.5 * constant


def test_the_ablation_variants_change_only_the_latents_and_the_balance():
    from wmlib.agents.dreamer import STATE_CONFIGS, VARIANTS, train, variant

    base = STATE_CONFIGS["quick"]
    cells = {name: variant(base, *spec) for name, spec in VARIANTS.items()}
    assert (cells["gaussian"].classes, cells["gaussian"].kl_alpha) == (0, 0.5)
    assert (cells["categorical+balance"].stoch_size, cells["categorical+balance"].classes,
            cells["categorical+balance"].kl_alpha) == (32, 32, 0.8)
    for c in cells.values():
        diff = {f.name for f in dataclasses.fields(c)
                if getattr(c, f.name) != getattr(base, f.name)}
        assert diff <= {"stoch_size", "classes", "kl_alpha", "kl_clamp", "actor_dist"}
    assert cells["categorical+trunc"].actor_dist == "trunc_normal"
    assert cells["categorical"].actor_dist == base.actor_dist == "tanh_normal"
    with pytest.raises(ValueError, match="latents must be"):
        variant(base, "binary")
    with pytest.raises(ValueError, match="Unknown ablation 'nope'"):
        train("smoke", ablation="nope", progress=False)


def test_imagine_batch_imagines_from_a_subset_of_the_sequences(monkeypatch):
    """``imagine_batch = b``: the actor-critic update imagines from b x L posterior states."""
    cfg = dataclasses.replace(SMOKE, pixels=False, imagine_batch=2, seed_episodes=1)
    agent = DreamerAgent(cfg, seed=0, device="cpu")
    agent.collect(None, seed=0)
    seen = []
    original = Dreamer.actor_loss

    def spy(self, posteriors):
        seen.append(tuple(posteriors.deter.shape[:2]))
        return original(self, posteriors)

    monkeypatch.setattr(Dreamer, "actor_loss", spy)
    agent.update()
    assert seen == [(cfg.chunk_length, 2)]


def test_each_optimiser_holds_only_its_own_networks_parameters():
    """The actor's optimiser never steps world-model or critic weights, nor the critic's the
    actor's: after an actor step alone, only the actor's weights have moved."""
    cfg = dataclasses.replace(SMOKE, pixels=False, seed_episodes=1, pred_discount=True)
    agent = DreamerAgent(cfg, seed=0, device="cpu")
    d = agent.dreamer
    ids = lambda opt: {id(p) for g in opt.param_groups for p in g["params"]}  # noqa: E731
    world = {id(p) for m in d.world_modules() for p in m.parameters()}
    assert ids(agent.optim) == world  # the discount head trains with the world model
    assert ids(agent.actor_optim) == {id(p) for p in d.actor.parameters()}
    assert ids(agent.value_optim) == {id(p) for p in d.value.parameters()}
    agent.collect(None, seed=0)
    before = {n: p.detach().clone() for n, p in d.named_parameters()}
    _, _, posteriors = d.world_loss(agent.replay.sample(cfg.batch_size, cfg.chunk_length))
    step(agent.actor_optim, d.actor_loss(posteriors)[0], d.actor, cfg.grad_clip)
    moved = {n for n, p in d.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(n.startswith("actor.") for n in moved)


def test_obs_norm_makes_the_world_models_loss_blind_to_each_dimensions_units():
    """With obs_norm, multiplying one state dimension by 100 (another unit) leaves the loss
    unchanged: every dimension counts equally, whatever its scale; without it the loss is
    dominated by the rescaled dimension. decode + postprocess give the environment's units."""
    import numpy as np

    from wmlib.agents.dreamer import STATE_CONFIGS
    from wmlib.agents.planet import PlaNet

    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(4, 6, 3)).astype(np.float32),
             "action": rng.uniform(-1, 1, (4, 6, 1)).astype(np.float32),
             "reward": rng.normal(size=(4, 6)).astype(np.float32)}
    scaled = dict(batch, obs=batch["obs"] * np.array([100.0, 1, 1], np.float32))
    losses = {}
    for norm in (False, True):
        cfg = dataclasses.replace(STATE_CONFIGS["smoke"], obs_norm=norm)
        for name, b in (("raw", batch), ("scaled", scaled)):
            torch.manual_seed(0)
            world = PlaNet(cfg, 1, (3,))
            loss, _, _ = world.loss(*world.prepare(b))
            losses[norm, name] = loss.item()
            if norm:
                x = torch.as_tensor(b["obs"])
                assert torch.allclose(world.postprocess(world.preprocess(x)), x, atol=1e-4)
                assert torch.allclose(world.obs_loc, x.reshape(-1, 3).mean(0), atol=1e-5)
    assert losses[True, "raw"] == pytest.approx(losses[True, "scaled"], rel=1e-4)
    assert losses[False, "scaled"] > 10 * losses[False, "raw"]
