"""ColloDreamer (wmlib.agents.collodreamer): the latent problem of a world model, the value's
two training methods, eq. 11, the agent's loop and CLI, and a learning test."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from synthetic import synthetic_batch  # tests/ is on sys.path

from wmlib.agents.collodreamer import (
    CONFIGS,
    STATE_CONFIGS,
    ColloDreamer,
    ColloDreamerAgent,
    latent_problem,
    mean_features,
    train,
)
from wmlib.agents.dreamer import step, variant
from wmlib.planners.collocation import LatCoConfig, LatCoPlanner, value_targets
from wmlib.training import CheckpointMismatch

SMOKE = CONFIGS["smoke"]


def posteriors_of(model, batch):
    obs, actions, _ = model.world.prepare(batch)
    posteriors, _ = model.world.dynamics.observe(model.world.embed(obs), actions)
    return posteriors


def test_the_latent_problem_steps_the_rssm_from_the_planned_mean():
    """transition(z, a) is the prior one RSSM step after the state whose deterministic part is
    z[:deter] and whose stochastic part is z[deter:] (its mean), computed here directly."""
    torch.manual_seed(0)
    model = ColloDreamer(SMOKE, action_size=1)
    post = posteriors_of(model, synthetic_batch())[-1]                 # [B]
    a = torch.rand(post.deter.shape[0], 1) * 2 - 1
    dyn = model.world.dynamics
    with torch.no_grad():
        deter = dyn.cell(dyn.cell_in(torch.cat([post.mean, a], -1)), post.deter)
        mean, _ = dyn._gaussian(dyn.prior_net(deter))
        problem = latent_problem(model.world)
        z = mean_features(post)
        torch.testing.assert_close(problem.transition(z, a), torch.cat([deter, mean], -1))
        # any leading shape: [P, T, F]
        zz = z[None].expand(3, -1, -1)
        assert problem.transition(zz, a[None].expand(3, -1, -1)).shape == zz.shape
        torch.testing.assert_close(problem.reward(z), model.world.predict_reward(z))


def test_mean_features_of_categorical_latents_are_class_probabilities():
    torch.manual_seed(0)
    cfg = variant(SMOKE, "categorical")
    model = ColloDreamer(cfg, action_size=1)
    post = posteriors_of(model, synthetic_batch())[-1]
    f = mean_features(post)
    probs = f[:, cfg.deter_size:].view(-1, cfg.stoch_size, cfg.classes)
    torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:2]))
    problem = latent_problem(model.world)
    assert problem.transition(f, torch.zeros(len(f), 1)).shape == f.shape


def test_collodreamer_has_no_actor_and_its_value_losses_train_only_the_value():
    torch.manual_seed(0)
    model = ColloDreamer(SMOKE, action_size=1)
    assert not hasattr(model, "actor")
    z = torch.randn(2, 5, model.world.dynamics.feature_size)
    a = torch.rand(2, 5, 1)
    loss = model.plan_value_loss(z, a)
    loss.backward()
    assert all(p.grad is None for p in model.world.parameters())
    assert all(p.grad is not None for p in model.value.parameters())
    # the targets are eq. 10 from every planned state, bootstrapped by the value itself
    expected = value_targets(latent_problem(model.world, model.value, SMOKE.discount), z, a)
    torch.testing.assert_close(model.value_targets(z, a), expected)


def test_the_replay_value_targets_are_n_step_returns_along_the_real_latents():
    torch.manual_seed(0)
    model = ColloDreamer(SMOKE, action_size=1)
    post = posteriors_of(model, synthetic_batch(T=4, B=2))
    with torch.no_grad():
        z = mean_features(post)
        r, v = model.world.predict_reward(z), model.value(z)
        g = SMOKE.discount
        targets = torch.stack([sum(g ** (j - t) * r[j] for j in range(t, 3)) + g ** (3 - t) * v[3]
                               for t in range(3)])
        expected = (0.5 * (v[:3] - targets) ** 2).mean()
    torch.testing.assert_close(model.replay_value_loss(post), expected)


def test_eq11_augmented_objective_by_hand_and_its_gradient():
    """With q_old = q the ratio m is 1, so J_latent = mean(A / lambda); the gradient reaches
    the transition (to make valuable transitions likelier), not the value."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, augmented=0.1)
    model = ColloDreamer(cfg, action_size=1)
    F = model.world.dynamics.feature_size
    z, a = torch.randn(3, 5, F), torch.rand(3, 5, 1) * 2 - 1
    lam = torch.rand(3, 4) + 1.0
    loss = model.augmented_loss(z, a, lam)
    with torch.no_grad():
        p = latent_problem(model.world, model.value, cfg.discount)
        adv = p.reward(z[:, 1:]) + p.value(p.transition(z[:, 1:], a[:, 1:])) - p.value(z[:, 1:])
        expected = -(adv[:, 1:] / lam[:, 1:]).mean()
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.world.dynamics.parameters())
    assert all(p.grad is None for p in model.value.parameters())


def test_value_regularisers_dropout_batch_norm_and_clipping():
    cfg = dataclasses.replace(SMOKE, value_dropout=0.2, value_batch_norm=True,
                              value_clip=(-1.0, 2.0))
    model = ColloDreamer(cfg, action_size=1)
    kinds = {type(m).__name__ for m in model.value.modules()}
    assert {"Dropout", "BatchNorm1d"} <= kinds
    model.eval()
    v = model.value(100 * torch.randn(4, 7, model.world.dynamics.feature_size))
    assert v.shape == (4, 7) and v.min() >= -1 and v.max() <= 2


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("collodreamer")
    agent = ColloDreamerAgent(STATE_CONFIGS["smoke"], run_dir=run_dir, seed=0, device="cpu")
    agent.train(progress=False, echo=False)
    return agent, run_dir


def test_the_agent_trains_checkpoints_and_resumes(smoke_run):
    agent, run_dir = smoke_run
    cfg = STATE_CONFIGS["smoke"]
    h = agent.history
    assert len(h["return"][1]) == cfg.episodes
    # the value was trained inside the planner while collecting (the second method)
    assert agent.value_losses and all(math.isfinite(v) for v in agent.value_losses)
    assert all(math.isfinite(v) for v in h["value_loss"][1])
    again = ColloDreamerAgent(cfg, run_dir=run_dir, seed=0, device="cpu")
    again.train(progress=False, echo=False)
    assert again.history["return"] == h["return"]
    other = ColloDreamerAgent(dataclasses.replace(cfg, bootstrap=False), seed=0, device="cpu")
    with pytest.raises(CheckpointMismatch, match="bootstrap"):
        other.load(run_dir / "checkpoint.pt")


@pytest.mark.parametrize("name", ["no-bootstrap", "execution", "augmented"])
def test_every_variant_runs_a_smoke_round(tmp_path, name):
    agent = train("smoke", run_dir=tmp_path, state=True, variant=name, progress=False)
    assert all(math.isfinite(r) for r in agent.history["return"][1])
    if name == "augmented":
        assert "augmented" in agent.history and agent.plans
    if name == "execution":
        assert not agent.value_losses   # nothing trained inside the planner
    with pytest.raises(ValueError, match="default"):
        train("smoke", run_dir=tmp_path, state=True, variant="nope")


def test_unknown_value_training_is_refused():
    with pytest.raises(ValueError, match="value_training"):
        ColloDreamerAgent(dataclasses.replace(STATE_CONFIGS["smoke"], value_training="never"),
                          device="cpu")


def test_the_cli_trains_collodreamer(tmp_path, capsys):
    from wmlib.cli import main

    assert main(["train", "collodreamer", "--state", "--profile", "smoke", "--variant",
                 "no-bootstrap", "--run-dir", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "checkpoint.pt").exists()
    assert main(["train", "dreamer", "--variant", "augmented", "--profile", "smoke",
                 "--run-dir", str(tmp_path / "d")]) == 2
    assert "ColloDreamer" in capsys.readouterr().err


@pytest.mark.slow
def test_collocation_on_a_learned_model_pushes_the_square_right():
    """The learning test: on the moving-square task (reward = how far right the square is), a
    world model fitted to random data lets LatCo (eq. 8) and ColloDreamer (eq. 10, with a
    value trained inside the planning loop) plan to push right from a filtered belief, and
    to push left when the reward is negated: the plans follow the learned reward through the
    learned effect of the action."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, depth=8, stoch_size=8, deter_size=32, hidden_size=32,
                              units=64, free_nats=1.0, lr=3e-3, value_lr=1e-3)
    model = ColloDreamer(cfg, action_size=1)
    data = [model.world.prepare(synthetic_batch(T=8, B=8, seed=s)) for s in range(8)]
    held_out = synthetic_batch(T=8, B=4, seed=100)
    planner_cfg = LatCoConfig(horizon=5, iterations=30, reward_scale=1.0)

    def first_actions(bootstrap: bool, train_value: bool = False, sign: float = 1.0):
        model.eval()
        with torch.no_grad():
            starts = mean_features(posteriors_of(model, held_out)[-1])
        optim = torch.optim.Adam(model.value.parameters(), lr=cfg.value_lr)

        def value_step(z, a):
            with torch.enable_grad():
                step(optim, model.plan_value_loss(z, a), model.value, cfg.grad_clip)

        actions = []
        for z0 in starts:
            planner = LatCoPlanner(planner_cfg, 1, generator=torch.Generator().manual_seed(0))
            problem = latent_problem(model.world, model.value if bootstrap else None,
                                     cfg.discount, lambda f: sign * model.world.predict_reward(f))
            actions.append(planner(problem, z0, on_iteration=value_step if train_value
                                   else None))
        model.train()
        return torch.stack(actions)

    optim = torch.optim.Adam(model.world.parameters(), lr=cfg.lr)
    for i in range(160):
        loss, _, _ = model.world.loss(*data[i % len(data)])
        step(optim, loss, model.world, cfg.grad_clip)
    latco = first_actions(bootstrap=False)
    collo = first_actions(bootstrap=True, train_value=True)
    assert latco.mean() > 0.5, latco.flatten()
    assert collo.mean() > 0.5, collo.flatten()
    left = first_actions(bootstrap=False, sign=-1.0)
    assert left.mean() < -0.5, left.flatten()


def test_collodreamer_starts_from_a_dreamer_run(tmp_path):
    """``init_from``: the world model and replay of a Dreamer run of the same world-model
    configuration; a resumed ColloDreamer run keeps its own checkpoint."""
    from wmlib.agents.dreamer import STATE_CONFIGS as DREAMER_STATE
    from wmlib.agents.dreamer import DreamerAgent

    source = DreamerAgent(DREAMER_STATE["smoke"], run_dir=tmp_path / "dreamer", seed=0,
                          device="cpu")
    source.train(progress=False, echo=False)
    agent = ColloDreamerAgent(STATE_CONFIGS["smoke"], run_dir=tmp_path / "collo", seed=0,
                              device="cpu")
    from wmlib.agents.collodreamer import start_from

    start_from(agent, tmp_path / "dreamer")
    for a, b in zip(agent.collo.world.parameters(), source.dreamer.world.parameters()):
        torch.testing.assert_close(a, b)
    assert len(agent.replay) == len(source.replay)
    assert "started from the world model" in agent.log_lines[-1]
    # the schedule may differ (here: evaluation and episodes), the world model may not
    trained = train("smoke", run_dir=tmp_path / "collo2", state=True, eval_every=1,
                    init_from=tmp_path / "dreamer", progress=False)
    assert len(trained.replay) == len(source.replay) + STATE_CONFIGS["smoke"].episodes
    with pytest.raises(ValueError, match="deter_size"):
        train("smoke", run_dir=tmp_path / "collo3", state=True, deter_size=8,
              init_from=tmp_path / "dreamer", progress=False)
