"""TD-MPC (wmlib.agents.tdmpc; Hansen, Wang and Su 2022, arXiv:2203.04955): the TOLD loss
on a hand case, the target network's EMA, which networks the policy loss trains, MPPI's
TD-MPC options (policy trajectories, warm start, momentum) and their defaults, a learning
test on a 1-D toy, and the agent on the book's loop."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from wmlib import devices
from wmlib.agents.tdmpc import (
    CONFIGS,
    TOLD,
    TDMPCAgent,
    TDMPCPolicy,
    exploration_std,
    plan,
    planning_horizon,
    policy_loss,
    told_loss,
    train,
)
from wmlib.planners import mppi_plan
from wmlib.training import CheckpointMismatch

SMOKE = CONFIGS["smoke"]


def linear(*weights: float) -> nn.Linear:
    """A bias-free linear map to one output with the given weights."""
    layer = nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
    return layer


def hand_model(cfg):
    """TOLD with 1-D states, latents and actions and known linear networks: h(s) = 2s,
    d(z, a) = z + a/2, R(z, a) = z, Q1 = z + a, Q2 = 2z, pi = tanh(0) = 0; the target's
    h^-(s) = s, Q1^- = z, Q2^- = 3z."""
    model = TOLD(cfg, 1, 1)
    model.encoder, model.dynamics, model.reward_net = linear(2.0), linear(1.0, 0.5), \
        linear(1.0, 0.0)
    model.q1, model.q2, model.policy = linear(1.0, 1.0), linear(2.0, 0.0), linear(0.0)
    target = copy.deepcopy(model)  # requires_grad left on: no gradient may reach it anyway
    target.encoder, target.q1, target.q2 = linear(1.0), linear(1.0, 0.0), linear(3.0, 0.0)
    return model, target


def test_the_told_loss_matches_a_hand_computation_and_its_targets_get_no_gradient():
    cfg = dataclasses.replace(SMOKE, latent_dim=1, horizon=2, min_std=0.0, rho=0.5,
                              reward_coef=0.5, value_coef=0.1, consistency_coef=2.0,
                              discount=0.9)
    model, target = hand_model(cfg)
    s, a, r = [0.5, -0.3, 0.4], [0.6, -1.0], [0.2, 0.7]
    # The replay's alignment: action[t] led to obs[t], reward[t] was received on the way.
    batch = {"obs": np.array([[[x] for x in s]], np.float32),
             "action": np.array([[[9.0], [a[0]], [a[1]]]], np.float32),
             "reward": np.array([[9.0, r[0], r[1]]], np.float32)}

    def expected(cont=(1.0, 1.0)):
        total, z = 0.0, 2 * s[0]
        for i in range(2):
            q1, q2, r_hat, z_next = z + a[i], 2 * z, z, z + 0.5 * a[i]
            zp = 2 * s[i + 1]                                   # h(s_{i+1}), the online h
            td = r[i] + 0.9 * cont[i] * min(zp, 3 * zp)          # min of the target's Qs
            total += 0.5 ** i * (0.5 * (r_hat - r[i]) ** 2
                                 + 0.1 * ((q1 - td) ** 2 + (q2 - td) ** 2)
                                 + 2.0 * (z_next - s[i + 1]) ** 2)
            z = z_next
        return total

    loss, metrics, zs = told_loss(model, target, batch, cfg)
    assert loss.item() == pytest.approx(expected(), rel=1e-5)
    assert metrics["loss"].item() == pytest.approx(expected(), rel=1e-5)
    assert [z.item() for z in zs] == pytest.approx([1.0, 1.3, 0.8])
    assert all(not z.requires_grad for z in zs)
    loss.backward()
    assert all(p.grad is None for p in target.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.policy.parameters())
    # A terminal transition (the replay's discount flag 0 after it) does not bootstrap.
    batch["discount"] = np.array([[1.0, 1.0, 0.0]], np.float32)
    loss, _, _ = told_loss(model, target, batch, cfg)
    assert loss.item() == pytest.approx(expected((1.0, 0.0)), rel=1e-5)
    with pytest.raises(ValueError, match="H \\+ 1 = 3"):
        told_loss(model, target, {k: v[:, :2] for k, v in batch.items()}, cfg)


def test_the_policy_loss_trains_pi_only():
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, min_std=0.0)
    model = TOLD(cfg, 3, 2)
    for q in (model.q1, model.q2):  # the released init zeroes them: no gradient to pi at all
        nn.init.normal_(q[-1].weight)
    zs = [torch.randn(5, cfg.latent_dim) for _ in range(cfg.horizon + 1)]
    loss = policy_loss(model, zs, cfg)
    with torch.no_grad():
        direct = -sum(cfg.rho ** i * torch.min(*model.Q(z, model.pi(z))).mean()
                      for i, z in enumerate(zs))
    assert loss.item() == pytest.approx(direct.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.policy.parameters())
    others = [model.q1, model.q2, model.encoder, model.dynamics, model.reward_net]
    assert all(p.grad is None for m in others for p in m.parameters())
    assert all(p.requires_grad for p in model.parameters())  # the Qs are unfrozen after


def test_pi_adds_clipped_noise_and_stays_in_the_action_box():
    torch.manual_seed(0)
    model = TOLD(SMOKE, 3, 2)
    z = torch.randn(1000, SMOKE.latent_dim)
    mu = model.pi(z)
    noisy = model.pi(z, std=1.0, generator=torch.Generator().manual_seed(0))
    assert (noisy - mu).abs().max() <= 0.3 + 1e-6 and noisy.abs().max() <= 1
    assert (noisy - mu).abs().max() > 0.25                  # clipped at 0.3, not at 1
    torch.testing.assert_close(mu, torch.tanh(model.policy(z)))


def old_mppi(objective, horizon, action_dim, candidates, top_k, iterations, temperature,
             min_std, generator):
    """`mppi_plan` as it was before TD-MPC's options (its loop, line for line)."""
    mu = torch.zeros(horizon, action_dim)
    sigma = torch.ones(horizon, action_dim)
    for _ in range(iterations):
        noise = torch.randn(candidates, horizon, action_dim, generator=generator)
        actions = (mu + sigma * noise).clamp(-1, 1)
        top = objective(actions).topk(top_k)
        elite, phi = actions[top.indices], top.values
        omega = torch.exp(temperature * (phi - phi.max()))
        w = (omega / omega.sum())[:, None, None]
        mu = (w * elite).sum(0)
        sigma = (w * (elite - mu) ** 2).sum(0).sqrt().clamp_min(min_std)
    pick = torch.multinomial(w.flatten(), 1, generator=generator)
    return elite[pick, 0][0]


def quadratic(target):
    return lambda a: -((a - target) ** 2).sum((1, 2))


def test_mppi_defaults_reproduce_the_old_planner():
    target = torch.tensor([[0.5, -0.2], [0.1, 0.9], [-0.7, 0.3]])
    kw = dict(candidates=50, top_k=5, iterations=4, temperature=2.0, min_std=0.05)
    old = old_mppi(quadratic(target), 3, 2, **kw, generator=torch.Generator().manual_seed(3))
    new = mppi_plan(quadratic(target), 3, 2, **kw, generator=torch.Generator().manual_seed(3))
    explicit = mppi_plan(quadratic(target), 3, 2, **kw, extra=None, init_mean=None,
                         momentum=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(old, new) and torch.equal(new, explicit)


def test_mppi_considers_the_extra_sequences_as_elites():
    """The optimal sequence passed in ``extra`` beats every Gaussian sample of a quadratic and
    is picked; without it the planner does not find it exactly."""
    target = torch.tensor([[0.7, -0.4], [0.2, 0.9]])
    extra = torch.cat([torch.zeros(3, 2, 2), target[None]])  # the optimum among 4 policies'
    kw = dict(candidates=8, top_k=1, iterations=1)
    state: dict = {}
    a = mppi_plan(quadratic(target), 2, 2, **kw, extra=extra, state=state,
                  generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, target[0]) and torch.equal(state["mean"], target)
    assert state["std"].shape == (2, 2) and (state["std"] >= 0.05).all()
    without = mppi_plan(quadratic(target), 2, 2, **kw, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(without, target[0])
    with pytest.raises(ValueError, match="extra must have shape"):
        mppi_plan(quadratic(target), 2, 2, **kw, extra=torch.zeros(3, 5, 2))


def test_mppi_warm_starts_from_init_mean_with_momentum():
    init = torch.tensor([[0.6], [-0.3], [0.2]])
    # A tiny initial sigma samples at the initial mean: the planner returns its first action.
    a = mppi_plan(lambda x: -x.pow(2).sum((1, 2)), 3, 1, candidates=16, top_k=4, iterations=1,
                  init_mean=init, init_std=1e-6, min_std=1e-6)
    assert a.item() == pytest.approx(0.6, abs=1e-4)
    # Momentum: mu = m mu_old + (1 - m) mu_new, the refit around mu_new being the same.
    kw = dict(candidates=32, top_k=8, iterations=1, init_mean=init)
    plain, mixed = {}, {}
    mppi_plan(quadratic(0.5), 3, 1, **kw, state=plain, generator=torch.Generator().manual_seed(1))
    mppi_plan(quadratic(0.5), 3, 1, **kw, momentum=0.1, state=mixed,
              generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(mixed["mean"], 0.1 * init + 0.9 * plain["mean"])
    torch.testing.assert_close(mixed["std"], plain["std"])
    # sigma clamped into [min_std, max_std]
    capped = {}
    mppi_plan(lambda x: torch.zeros(len(x)), 3, 1, candidates=64, top_k=64, iterations=2,
              init_std=2.0, max_std=0.3, state=capped)
    assert (capped["std"] <= 0.3 + 1e-6).all()


def test_the_schedules_are_linear_and_clamped():
    cfg = dataclasses.replace(SMOKE, horizon=5, std_steps=100, horizon_steps=100)
    assert exploration_std(cfg, 0) == pytest.approx(0.5)
    assert exploration_std(cfg, 50) == pytest.approx(0.275)
    assert exploration_std(cfg, 10_000) == pytest.approx(0.05)
    assert [planning_horizon(cfg, s) for s in (0, 25, 50, 100, 1000)] == [1, 2, 3, 5, 5]
    assert planning_horizon(dataclasses.replace(cfg, horizon_steps=0), 0) == 5


def toy_batch(g: np.random.Generator, B: int, T: int) -> dict:
    """The 1-D toy: x' = clip(x + 0.2 a, -1, 1), reward = x' (the state reached), from random
    starts in [-1, 1] and random actions, aligned as the replay (action[t] led to obs[t])."""
    x = np.zeros((B, T, 1), np.float32)
    a = g.uniform(-1, 1, (B, T, 1)).astype(np.float32)
    a[:, 0] = 0
    x[:, 0, 0] = g.uniform(-1, 1, B)
    for t in range(1, T):
        x[:, t] = np.clip(x[:, t - 1] + 0.2 * a[:, t], -1, 1)
    reward = x[..., 0].copy()
    reward[:, 0] = 0
    return {"obs": x, "action": a, "reward": reward}


@pytest.mark.slow
def test_tdmpc_learns_to_push_right_on_a_toy():
    """The learning test: TOLD and pi fitted on random transitions of the 1-D toy (reward =
    how far right) plan and act to push right from x = 0 (> 0.5, the planner with every seed);
    untrained they do not (pi is 0 there and the planner's scores are all equal, its actions
    random around 0)."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(SMOKE, latent_dim=8, enc_dim=32, mlp_dim=64, horizon=3,
                              discount=0.9, lr=3e-3, tau=0.05, update_freq=1, iterations=4,
                              num_samples=64, num_elites=8, num_pi_trajs=4, std_steps=0,
                              horizon_steps=0)
    model = TOLD(cfg, 1, 1)
    target = copy.deepcopy(model).requires_grad_(False)
    x0 = torch.zeros(1, 1)

    def act() -> tuple[np.ndarray, float]:  # the planner's first action over 8 seeds, pi's
        with torch.no_grad():
            z = model.h(x0)
            a = [plan(model, z, cfg, step=10_000, generator=torch.Generator().manual_seed(k))[0]
                 for k in range(8)]
            return torch.cat(a).numpy(), model.pi(z).item()

    a, pi = act()
    assert pi == 0.0 and abs(a.mean()) < 0.3 and (a > 0.5).mean() < 0.5, a
    optim = torch.optim.Adam([p for n, p in model.named_parameters()
                              if not n.startswith("policy.")], lr=cfg.lr)
    pi_optim = torch.optim.Adam(model.policy.parameters(), lr=cfg.lr)
    g = np.random.default_rng(0)
    for _ in range(400):
        loss, metrics, zs = told_loss(model, target, toy_batch(g, 64, cfg.horizon + 1), cfg)
        optim.zero_grad()
        (loss / cfg.horizon).backward()
        optim.step()
        pi_optim.zero_grad()
        policy_loss(model, zs, cfg).backward()
        pi_optim.step()
        for t, p in zip(target.parameters(), model.parameters()):
            t.data.lerp_(p.data, cfg.tau)
    assert metrics["reward_loss"].item() < 0.01
    a, pi = act()
    assert (a > 0.5).all() and pi > 0.5, (a, pi)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tdmpc")
    agent = train("smoke", run_dir=run_dir, seed=0, progress=False, device="cpu")
    return agent, run_dir


def test_the_agent_trains_checkpoints_and_resumes(smoke_run):
    agent, run_dir = smoke_run
    h = agent.history
    assert len(h["return"][1]) == SMOKE.episodes and len(h["eval_return"][1]) == 1
    for key in ("loss", "reward_loss", "value_loss", "consistency_loss", "pi_loss"):
        assert key in h and all(math.isfinite(v) for v in h[key][1])
    assert (run_dir / "checkpoint.pt").exists() and any((run_dir / "replay").iterdir())
    again = TDMPCAgent(SMOKE, run_dir=run_dir, seed=0, device="cpu")
    again.train(progress=False, echo=False)  # nothing left to do: loads and returns
    assert again.history["return"] == h["return"]
    for name in ("model", "target"):
        for a, b in zip(getattr(agent, name).parameters(), getattr(again, name).parameters()):
            torch.testing.assert_close(a, b)
    other = TDMPCAgent(dataclasses.replace(SMOKE, mlp_dim=17), seed=0, device="cpu")
    with pytest.raises(CheckpointMismatch, match="mlp_dim"):
        other.load(run_dir / "checkpoint.pt")


def test_one_update_moves_the_target_by_tau(cartpole):
    agent = TDMPCAgent(SMOKE, env=cartpole, seed=0, device="cpu")
    agent.collect(None, seed=0)
    old = [p.clone() for p in agent.target.parameters()]
    metrics = agent.update()
    assert {"loss", "pi_loss", "value_loss"} <= set(metrics)
    for t, p, o in zip(agent.target.parameters(), agent.model.parameters(), old):
        torch.testing.assert_close(t, o + SMOKE.tau * (p - o))
    assert any(not torch.equal(t, o) for t, o in zip(agent.target.parameters(), old))
    assert all(not p.requires_grad for p in agent.target.parameters())
    moved = [p.clone() for p in agent.target.parameters()]
    agent.update()  # update_freq = 2: the second update leaves the target alone
    assert all(torch.equal(t, m) for t, m in zip(agent.target.parameters(), moved))


def test_the_policy_plans_explores_and_evaluates_without_noise(cartpole):
    agent = TDMPCAgent(SMOKE, env=cartpole, seed=0, device="cpu")
    obs, _ = cartpole.reset(seed=0)
    greedy = agent.make_policy(0.0, seed=1)
    assert isinstance(greedy, TDMPCPolicy) and greedy.prev_mean is None
    a = greedy(obs)
    assert a.shape == (1,) and a.dtype == np.float32 and abs(a[0]) <= 1
    assert greedy.prev_mean.shape == (SMOKE.horizon, 1)  # kept for the warm start
    greedy.reset()
    assert greedy.prev_mean is None
    # the same seed gives the same plan; exploration adds noise on top of it
    again = agent.make_policy(0.0, seed=1)
    np.testing.assert_array_equal(again(obs), a)
    explore = agent.make_policy(1.0, seed=1)
    assert not np.array_equal(explore(obs), a)
    z = agent.model.h(devices.to_device(obs, "cpu", torch.float32)[None])
    assert z.shape == (1, SMOKE.latent_dim)


def test_tdmpc_is_state_only_and_on_the_cli():
    from wmlib.cli import main

    with pytest.raises(ValueError, match="state only"):
        train("smoke", pixels=True)
    assert main(["train", "tdmpc", "--kind", "rnn", "--profile", "smoke"]) == 2
    assert set(CONFIGS) == {"smoke", "quick", "gpu", "full"}
    assert CONFIGS["gpu"].budget_s and CONFIGS["full"].budget_s is None
    full = CONFIGS["full"]
    assert (full.latent_dim, full.mlp_dim, full.horizon, full.batch_size, full.num_samples,
            full.num_elites, full.num_pi_trajs, full.iterations) == (50, 512, 5, 512, 512, 64,
                                                                     25, 6)
    assert all(not c.pixels for c in CONFIGS.values())
