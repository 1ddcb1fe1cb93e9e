import pytest
import torch

from wmlib.planners import cem_plan, random_shooting


def quadratic(target):
    return lambda a: -((a - target) ** 2).sum((1, 2))


def test_cem_finds_known_optimum():
    target = torch.tensor([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1], [0.9, -0.9]])
    trace = []
    first = cem_plan(quadratic(target), horizon=4, action_dim=2, candidates=400, top_k=40,
                     iterations=10, generator=torch.Generator().manual_seed(0), trace=trace)
    assert torch.allclose(first, target[0], atol=0.02)
    assert torch.allclose(trace[-1]["mean"], target, atol=0.03)
    stds = [t["std"].mean().item() for t in trace]
    assert stds[-1] < 0.05 < stds[0]


def test_cem_respects_action_bounds():
    # The optimum lies outside [-1, 1]: the best feasible action is the bound.
    first = cem_plan(quadratic(torch.full((3, 1), 2.0)), 3, 1, 200, 20, 6,
                     generator=torch.Generator().manual_seed(1))
    assert first.item() == pytest.approx(1.0, abs=0.01)


def test_random_shooting_returns_first_action_of_best_candidate():
    calls = []

    def objective(a):
        calls.append(a)
        return a.sum((1, 2))

    gen = torch.Generator().manual_seed(0)
    action = random_shooting(objective, horizon=5, action_dim=2, candidates=64, generator=gen)
    cands = calls[0]
    assert cands.shape == (64, 5, 2) and cands.min() >= -1 and cands.max() <= 1
    assert torch.equal(action, cands[cands.sum((1, 2)).argmax(), 0])


def test_random_shooting_improves_with_candidates():
    target = torch.full((2, 1), 0.3)
    errs = []
    for j in (4, 4096):
        a = random_shooting(quadratic(target), 2, 1, j, generator=torch.Generator().manual_seed(2))
        errs.append(abs(a.item() - 0.3))
    assert errs[1] < 0.05 and errs[1] < errs[0]


def test_cem_policy_executes_k_actions_of_each_plan_before_replanning():
    import numpy as np

    from wmlib.agents.mpc import MPCConfig, cem_policy

    target = torch.tensor([[0.5], [0.2], [-0.6], [0.9]])
    plans = []

    def objective_from_obs(obs):
        plans.append(obs)  # one call per plan
        return quadratic(target)

    cfg = MPCConfig(horizon=4, candidates=400, top_k=40, iterations=10)
    act = cem_policy(objective_from_obs, cfg, 1, torch.Generator().manual_seed(0), execute=3)
    actions = [act(t) for t in range(4)]
    assert plans == [0, 3]  # planned at the first step, and again after 3 executed actions
    np.testing.assert_allclose(np.concatenate(actions[:3]), target[:3, 0], atol=0.03)
    act(4)
    act.reset()  # a new episode: the rest of the plan is dropped
    act(5)
    assert plans == [0, 3, 5]
    mpc = cem_policy(objective_from_obs, cfg, 1, torch.Generator().manual_seed(0))
    mpc(6), mpc(7)
    assert plans[-2:] == [6, 7]  # execute=1 is MPC: a plan at every step
    with pytest.raises(ValueError, match="between 1 and the horizon 4"):
        cem_policy(objective_from_obs, cfg, 1, execute=5)
