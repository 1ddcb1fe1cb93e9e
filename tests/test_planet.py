"""Tests of wmlib.agents.planet: latent CEM, the loss, the policy, checkpoints and resume."""

import dataclasses

import numpy as np
import pytest
import torch
from synthetic import synthetic_batch  # tests/synthetic.py (tests/ is on sys.path)
from torch import nn

from wmlib.agents.planet import CONFIGS, FAST, PlaNet, PlaNetAgent, PlaNetPolicy
from wmlib.loop import curve
from wmlib.models.rssm import State
from wmlib.training import CheckpointMismatch, load_checkpoint, save_checkpoint, scalars

SMOKE = CONFIGS["smoke"]


class Integrator(nn.Module):
    """A hand-built latent model: the belief is a position that each action moves by a."""

    feature_size = 1

    def imagine(self, actions, start):
        x = start.deter + actions.cumsum(0)
        return State(x[..., :0], x[..., :0], x[..., :0], x)


class Target(nn.Module):
    """Reward -(x - 0.6)^2 at every step: the best plan moves to 0.6 at once and stays."""

    def forward(self, features):
        return -(features - 0.6) ** 2


def test_latent_cem_finds_the_optimum_of_a_hand_built_model():
    model = PlaNet(SMOKE, action_size=1)
    model.dynamics, model.reward = Integrator(), Target()
    start = State(*(torch.zeros(1, 0),) * 3, torch.zeros(1, 1))
    trace = []
    first = model.plan(start, torch.Generator().manual_seed(0), trace=trace, horizon=5,
                       candidates=500, top_k=50, iterations=8)
    assert first.shape == (1,)
    assert abs(first.item() - 0.6) < 0.05
    # The candidates' returns narrow and climb over the iterations.
    assert trace[-1]["returns"].std() < trace[0]["returns"].std()
    assert trace[-1]["returns"].mean() > trace[0]["returns"].mean()


def test_returns_roll_the_prior_from_one_belief_for_every_candidate():
    torch.manual_seed(0)
    model = PlaNet(SMOKE, action_size=1)
    state = model.dynamics.initial(1)
    actions = torch.rand(7, SMOKE.horizon, 1) * 2 - 1
    returns = model.returns(state, actions)
    assert returns.shape == (7,)
    # Candidate j alone gives its own return (the prior's std is the only randomness).
    model.dynamics.min_std = 0.0
    with torch.no_grad():
        model.dynamics.prior_net[-1].weight.zero_()
        model.dynamics.prior_net[-1].bias.fill_(-100.0)  # std = softplus(-100): deterministic
    both = model.returns(state, actions)
    one = model.returns(state, actions[3:4])
    torch.testing.assert_close(both[3:4], one)


def test_a_few_updates_reduce_the_loss():
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, depth=8, stoch_size=8, deter_size=32, hidden_size=32)
    model = PlaNet(cfg, action_size=1)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = model.prepare(synthetic_batch())
    first = None
    for _ in range(40):
        loss, metrics, _ = model.loss(*batch)
        metrics = scalars(metrics)
        first = first or metrics
        optim.zero_grad()
        loss.backward()
        optim.step()
    _, last, _ = model.loss(*batch)
    last = scalars(last)
    assert last["recon"] < first["recon"] - 100
    assert last["reward_loss"] < first["reward_loss"]
    assert np.isfinite(last["loss"])


def test_overshooting_at_distance_one_equals_the_plain_loss():
    model = PlaNet(SMOKE, action_size=1)
    batch = model.prepare(synthetic_batch())
    torch.manual_seed(3)
    plain, _, _ = model.loss(*batch, overshooting=0)
    torch.manual_seed(3)
    d1, _, _ = model.loss(*batch, overshooting=1)
    torch.manual_seed(3)
    d3, metrics, _ = model.loss(*batch, overshooting=3, beta=1.0)
    metrics = scalars(metrics)
    torch.testing.assert_close(plain, d1)
    assert torch.isfinite(d3) and metrics["kl"] >= SMOKE.free_nats - 1e-5


def test_overshooting_keeps_the_one_step_kl_and_adds_the_mean_d_step_kl():
    from wmlib.objectives import kl_loss, latent_overshooting

    model = PlaNet(SMOKE, action_size=1)
    obs, actions, rewards = model.prepare(synthetic_batch())
    torch.manual_seed(4)
    _, metrics, _ = model.loss(obs, actions, rewards, overshooting=3, beta=0.5)
    metrics = scalars(metrics)
    torch.manual_seed(4)
    posteriors, priors = model.dynamics.observe(model.embed(obs), actions)
    model.decode(posteriors.features())  # draws no random numbers; keeps the order honest
    one = kl_loss(posteriors, priors, SMOKE.free_nats)
    over = latent_overshooting(model.dynamics, posteriors, actions, 3, [0.0, 0.75, 0.75],
                               SMOKE.free_nats)
    assert metrics["kl"] == pytest.approx(one.item(), rel=1e-5)
    assert metrics["overshooting"] == pytest.approx(over.item(), rel=1e-5)
    # = 0.5 * mean over d = 2, 3 of the clamped d-step KLs, each at least the free nats.
    assert metrics["overshooting"] >= 0.5 * SMOKE.free_nats - 1e-5


def test_the_loss_weights_the_reward_term_by_reward_scale():
    model = PlaNet(dataclasses.replace(SMOKE, reward_scale=1.0), action_size=1)
    batch = model.prepare(synthetic_batch())
    torch.manual_seed(5)
    one, metrics, _ = model.loss(*batch)
    metrics = scalars(metrics)
    model.cfg = dataclasses.replace(SMOKE, reward_scale=10.0)
    torch.manual_seed(5)
    ten, _, _ = model.loss(*batch)
    assert (ten - one).item() == pytest.approx(9 * metrics["reward_loss"], rel=1e-4)


def test_reward_overshooting_adds_the_mean_open_loop_reward_loss():
    from wmlib.objectives import observation_overshooting, reward_loss

    cfg = dataclasses.replace(SMOKE, overshooting_reward=100.0, overshooting_beta=0.0)
    model = PlaNet(cfg, action_size=1)
    obs, actions, rewards = model.prepare(synthetic_batch())
    torch.manual_seed(6)
    total, metrics, _ = model.loss(obs, actions, rewards, overshooting=3)
    metrics = scalars(metrics)
    assert "overshooting" not in metrics  # beta = 0: no latent overshooting KL
    torch.manual_seed(6)
    posteriors, priors = model.dynamics.observe(model.embed(obs), actions)
    model.decode(posteriors.features())
    over = observation_overshooting(model.dynamics, model.predict_reward, posteriors, actions,
                                    rewards, 3, event_dims=0)
    assert metrics["reward_overshooting"] == pytest.approx(over.item(), rel=1e-5)
    rest = (metrics["recon"] + cfg.reward_scale * metrics["reward_loss"] + metrics["kl"])
    assert total.item() == pytest.approx(rest + 100.0 * over.item(), rel=1e-5)
    # The term trains the transition (prior) network and the reward head through open-loop
    # predictions, not only the posterior path.
    model.zero_grad()
    observation_overshooting(model.dynamics, model.predict_reward, posteriors.detach(), actions,
                             rewards, 3, event_dims=0).backward()
    assert model.dynamics.prior_net[0].weight.grad.abs().sum() > 0
    assert model.reward[0].weight.grad.abs().sum() > 0
    assert reward_loss(rewards, rewards).item() == pytest.approx(0.5 * np.log(2 * np.pi))


def test_the_rnn_is_trained_open_loop_by_observation_overshooting():
    torch.manual_seed(0)
    model = PlaNet(dataclasses.replace(SMOKE, kind="rnn"), action_size=1)
    loss, metrics, _ = model.loss(*model.prepare(synthetic_batch()), overshooting=2)
    metrics = scalars(metrics)
    assert "kl" not in metrics and metrics["open_loop_recon"] > 0
    loss.backward()
    # The zeros-in open-loop step shares the GRU, which now gets gradient from the open-loop term.
    assert model.dynamics.cell.weight_ih.grad.abs().sum() > 0


def test_prepare_makes_batches_time_major_and_keeps_the_alignment():
    model = PlaNet(SMOKE, action_size=1)
    raw = synthetic_batch(T=6, B=3)
    obs, actions, rewards = model.prepare(raw)
    assert obs.shape == (6, 3, 3, 64, 64) and actions.shape == (6, 3, 1)
    assert rewards.shape == (6, 3)
    np.testing.assert_array_equal(actions[:, 1].numpy(), raw["action"][1])
    assert obs.min() >= -0.5 and obs.max() <= 0.5 + 1 / 32


def test_bad_observation_shapes_give_a_clear_error():
    model = PlaNet(SMOKE, action_size=1)
    with pytest.raises(ValueError, match=r"3, 64, 64"):
        model.embed(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"3, 64, 64"):
        model.preprocess(np.zeros((64, 64, 3), np.uint8))
    from wmlib import envs

    with pytest.raises(ValueError, match="pixels=True"):
        PlaNetAgent(SMOKE, env=envs.make("dmc:cartpole-swingup", pixels=False))


def test_policy_filters_the_belief_and_returns_bounded_actions():
    torch.manual_seed(0)
    model = PlaNet(SMOKE, action_size=1)
    policy = PlaNetPolicy(model, noise=5.0, seed=0)
    frames = synthetic_batch(T=3, B=1)["obs"][0]
    for frame in frames:
        action = policy(frame)
        assert action.shape == (1,) and action.dtype == np.float32
        assert -1 <= action[0] <= 1
    assert policy.state.deter.shape == (1, SMOKE.deter_size)
    assert torch.equal(policy.prev_action, torch.as_tensor(action)[None])
    policy.reset()
    assert torch.count_nonzero(policy.state.deter) == 0


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("planet")
    cfg = dataclasses.replace(SMOKE, episodes=2, eval_every=2, max_steps=8, collect_interval=2)
    agent = PlaNetAgent(cfg, run_dir=run_dir, seed=0)
    agent.train(progress=False, echo=False)
    return cfg, run_dir, agent


def test_training_logs_a_curve_and_keeps_replay_and_checkpoint_on_disk(trained_run):
    cfg, run_dir, agent = trained_run
    assert (run_dir / "checkpoint.pt").exists()
    assert len(list((run_dir / "replay").glob("episode_*.npz"))) == cfg.seed_episodes + 2
    c = curve(agent.history)
    assert len(c["train"]) == 2 and len(c["eval"]) == 1
    assert c["train"][1][0] > c["train"][0][0]  # env steps grow
    assert (run_dir / "log.txt").read_text().count("episode") >= 2


def test_resume_round_trips_the_agent_and_continues(trained_run):
    cfg, run_dir, agent = trained_run
    again = PlaNetAgent(cfg, run_dir=run_dir, seed=0)
    assert len(again.replay) == len(agent.replay)
    again.load()
    for (k, a), b in zip(agent.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert again.history.data == agent.history.data
    again.train(episodes=3, progress=False, echo=False)
    assert len(again.history["return"][0]) == 3
    assert len(list((run_dir / "replay").glob("episode_*.npz"))) == cfg.seed_episodes + 3


def test_the_agent_refuses_a_checkpoint_from_another_config(trained_run):
    cfg, run_dir, _ = trained_run
    other = PlaNetAgent(dataclasses.replace(cfg, deter_size=cfg.deter_size + 1), seed=0)
    with pytest.raises(CheckpointMismatch, match="deter_size"):
        other.load(run_dir / "checkpoint.pt")


@pytest.mark.slow
@pytest.mark.parametrize("speed", ["plain", "every speed option"])
def test_planet_learns_a_model_that_plans_towards_the_reward(speed):
    """A square the action moves left or right, rewarded for being on the right: after a short
    training on random data, latent CEM from a filtered belief pushes right (a > 0); on the
    plain path and with the speed options of the full profile (no-ops where bf16 is not
    native)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, depth=8, stoch_size=8, deter_size=32, hidden_size=32,
                              free_nats=1.0, lr=3e-3, horizon=4, candidates=100, top_k=10,
                              iterations=3, **(FAST if speed != "plain" else {}))
    model = PlaNet(cfg, action_size=1)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    data = [model.prepare(synthetic_batch(T=8, B=8, seed=s)) for s in range(8)]
    for step in range(160):
        loss, metrics, _ = model.loss(*data[step % len(data)])
        metrics = scalars(metrics)
        optim.zero_grad()
        loss.backward()
        optim.step()
    obs, actions, rewards = model.prepare(synthetic_batch(T=8, B=8, seed=100))
    with torch.no_grad():
        posteriors, _ = model.dynamics.observe(model.embed(obs), actions)
        predicted = model.predict_reward(posteriors.features())
    # The reward head reads the square's position from the latent state of unseen sequences...
    assert np.corrcoef(predicted.flatten(), rewards.flatten())[0, 1] > 0.5
    # ...and the planner, rolling the prior forward, pushes the square to the right.
    gen = torch.Generator().manual_seed(0)
    firsts = [model.plan(posteriors[-1, b:b + 1], gen).item() for b in range(4)]
    assert np.mean(firsts) > 0.4, firsts


def test_learning_the_model_lets_latent_cem_steer_towards_reward():
    """The agent's learning test: a model fitted on the moving-square task (reward = how far
    right the square is) must make CEM push right from the centre; untrained, it cannot."""
    from wmlib.agents.planet_variants import fit
    from wmlib.replay import Replay

    data = synthetic_batch(T=12, B=24, seed=1)
    replay = Replay(10_000, seed=0)
    for b in range(24):
        replay.add({k: v[b] for k, v in data.items()})
    cfg = dataclasses.replace(SMOKE, depth=8, stoch_size=8, deter_size=32, hidden_size=32,
                              reward_scale=100.0, free_nats=1.0)
    torch.manual_seed(0)
    model = PlaNet(cfg, action_size=1)

    def first_actions():
        # From the centre (action 0 leads to the square at 32), plan 5 times with fresh seeds.
        obs = model.preprocess(synthetic_batch(T=1, B=1, seed=9)["obs"][:, 0], noise=False)
        state, _ = model.dynamics.obs_step(model.dynamics.initial(1), torch.zeros(1, 1),
                                           model.embed(obs))
        return [model.plan(state, torch.Generator().manual_seed(s), horizon=3, candidates=200,
                           top_k=20, iterations=4).item() for s in range(5)]

    fit(model, replay, updates=300, batch_size=8, chunk_length=8, overshooting=3,
        progress=False)
    model.eval()
    assert min(first_actions()) > 0.3


def test_a_checkpoint_from_before_an_option_existed_loads_only_at_its_old_value(tmp_path):
    model = PlaNet(SMOKE, action_size=1)
    path = tmp_path / "old.pt"
    save_checkpoint(path, SMOKE, 3, {"model": model})
    state = torch.load(path, weights_only=False)
    del state["config"]["kl_alpha"]  # saved before DreamerV2's KL balancing was an option
    state["fingerprint"] = "old"
    torch.save(state, path)
    assert load_checkpoint(path, SMOKE, {"model": model})["step"] == 3  # 0.5: the plain KL
    with pytest.raises(CheckpointMismatch, match="kl_alpha: checkpoint None, now 0.8"):
        load_checkpoint(path, dataclasses.replace(SMOKE, kl_alpha=0.8), {"model": model})
    with pytest.raises(CheckpointMismatch, match="free_nats"):  # not an added option
        load_checkpoint(path, dataclasses.replace(SMOKE, free_nats=2.0), {"model": model})
