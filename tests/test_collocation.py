"""Latent collocation (wmlib.planners.collocation, gauss_newton) and MPPI: each term against a
direct computation, eq. 7 on a known sequence, the planner on a problem with a known optimum,
and a learning test for ColloDreamer's value trained inside the planning loop."""

from __future__ import annotations

import math

import pytest
import torch

from wmlib.planners import mppi_plan
from wmlib.planners.collocation import (
    LatCoConfig,
    LatCoPlanner,
    LatentProblem,
    action_violation,
    dynamics_violation,
    lagrangian,
    plan_return,
    rollout,
    update_multipliers,
    value_targets,
    variance_violation,
)
from wmlib.planners.gauss_newton import block_tridiagonal_solve, gauss_newton_step, jacobian_rows


def linear_problem(goal=(0.5, -0.3), value=None, discount=1.0):
    goal = torch.tensor(goal)
    return LatentProblem(transition=lambda z, a: z + 0.5 * a,
                         reward=lambda z: -(z - goal).pow(2).sum(-1), value=value,
                         discount=discount)


def test_block_tridiagonal_solve_matches_a_dense_solve():
    torch.manual_seed(0)
    P, T, n = 3, 6, 4
    A = torch.randn(P, T * n, T * n, dtype=torch.float64)
    band = torch.zeros(T * n, T * n, dtype=torch.float64)
    for i in range(T):
        for j in range(max(0, i - 1), min(T, i + 2)):
            band[i * n:(i + 1) * n, j * n:(j + 1) * n] = 1
    M = (A @ A.mT) * band + T * n * torch.eye(T * n, dtype=torch.float64)
    D = torch.stack([M[:, i * n:(i + 1) * n, i * n:(i + 1) * n] for i in range(T)], 1)
    B = torch.stack([M[:, (i + 1) * n:(i + 2) * n, i * n:(i + 1) * n] for i in range(T - 1)], 1)
    g = torch.randn(P, T, n, dtype=torch.float64)
    x = block_tridiagonal_solve(D, B, g)
    torch.testing.assert_close(x.reshape(P, -1), torch.linalg.solve(M, g.reshape(P, -1)))


def test_jacobian_rows_match_autograd():
    torch.manual_seed(0)
    W = torch.randn(3, 5)

    def fn(xa, xb, i):
        return torch.tanh(xa @ W.T) * xb[:, :3] + i[:, None]

    xa, xb = torch.randn(4, 5), torch.randn(4, 5)
    value, (Ja, Jb) = jacobian_rows(fn, (xa, xb), torch.arange(4))
    torch.testing.assert_close(value, fn(xa, xb, torch.arange(4)))
    for k in range(4):
        ja, jb = torch.autograd.functional.jacobian(
            lambda a, b, k=k: fn(a[None], b[None], torch.tensor([k]))[0], (xa[k], xb[k]))
        torch.testing.assert_close(Ja[k], ja)
        torch.testing.assert_close(Jb[k], jb)


def test_gauss_newton_solves_linear_least_squares_in_one_step():
    """For linear residuals Gauss-Newton is exact: one undamped step reaches the minimiser
    that torch.linalg.lstsq finds on the dense system."""
    torch.manual_seed(0)
    T, n = 5, 2
    U, Ca, Cb = torch.randn(T, 3, n), torch.randn(T - 1, 3, n), torch.randn(T - 1, 3, n)
    cu, cp = torch.randn(T, 3), torch.randn(T - 1, 3)

    def unary(x, i):
        return (U[i % T] @ x[:, :, None])[..., 0] - cu[i % T]

    def pair(xa, xb, i):
        t = i % (T - 1)
        return (Ca[t] @ xa[:, :, None] + Cb[t] @ xb[:, :, None])[..., 0] - cp[t]

    x = gauss_newton_step(unary, pair, torch.zeros(1, T, n), damping=0.0)
    J = torch.zeros(3 * T + 3 * (T - 1), T * n)
    r = torch.cat([cu.flatten(), cp.flatten()])
    for t in range(T):
        J[3 * t:3 * t + 3, n * t:n * t + n] = U[t]
    for t in range(T - 1):
        row = 3 * T + 3 * t
        J[row:row + 3, n * t:n * t + n] = Ca[t]
        J[row:row + 3, n * (t + 1):n * (t + 2)] = Cb[t]
    expected = torch.linalg.lstsq(J.double(), r.double()[:, None]).solution[:, 0]
    torch.testing.assert_close(x.reshape(-1).double(), expected, atol=1e-4, rtol=1e-4)


def test_each_term_of_the_collocation_objective_against_a_direct_computation():
    torch.manual_seed(0)
    P, H, Fz, A = 2, 3, 2, 2
    z, a = torch.randn(P, H + 1, Fz), 1.5 * torch.randn(P, H + 1, A)
    value = lambda x: x.sum(-1) * 2.0  # noqa: E731
    problem = linear_problem(value=value, discount=0.9)
    goal = torch.tensor([0.5, -0.3])
    dyn = torch.zeros(P, H)
    ret = torch.zeros(P)
    for p in range(P):
        for t in range(H):
            dyn[p, t] = ((z[p, t + 1] - (z[p, t] + 0.5 * a[p, t])) ** 2).sum()
        for k in range(H + 1):
            ret[p] += 0.9 ** k * -((z[p, k] - goal) ** 2).sum()
        ret[p] += 0.9 ** (H + 1) * 2.0 * (z[p, H] + 0.5 * a[p, H]).sum()
    torch.testing.assert_close(dynamics_violation(problem, z, a), dyn)
    torch.testing.assert_close(plan_return(problem, z, a), ret)
    # action bounds: zero inside [-1, 1], the squared excess outside
    acts = torch.tensor([[[0.5, -2.0], [1.5, 0.0]]])
    torch.testing.assert_close(action_violation(acts), torch.tensor([[1.0, 0.25]]))
    # eq. 6 with multipliers
    lam, nu = torch.rand(P, H), torch.rand(P, H + 1)
    expected = (ret - (lam * (dyn - 0.01)).sum(1) - (nu * (action_violation(a) - 0.02)).sum(1))
    torch.testing.assert_close(lagrangian(problem, z, a, lam, nu, 0.01, 0.02), expected)
    # the variance term: the plan's std against the model's (no gradient into the model)
    std = torch.rand(P, H + 1, Fz, requires_grad=True)
    problem.transition_std = lambda zz, aa: torch.full_like(zz, 0.3) + 0 * zz.sum()
    var = variance_violation(problem, z, a, std)
    torch.testing.assert_close(var, (std[:, 1:] - 0.3).pow(2).sum(-1))


def test_eq7_multiplier_update_on_a_known_violation_sequence():
    """lambda <- lambda + 0.1 log10(v / eps + 0.1) lambda, by hand: grows while the violation
    is above eps, stays put at v = 0.9 eps, shrinks below."""
    lam = torch.tensor(1.0)
    eps = 0.01
    expected = 1.0
    for v in [1.0, 0.1, 0.009, 0.0]:
        lam = update_multipliers(lam, torch.tensor(v), eps)
        expected = expected * (1 + 0.1 * math.log10(v / eps + 0.1))
        assert float(lam) == pytest.approx(expected, rel=1e-6)
    steps = [float(update_multipliers(torch.tensor(2.0), torch.tensor(v), eps))
             for v in (0.05, 0.009, 0.001)]
    assert steps[0] > 2.0 and steps[1] == pytest.approx(2.0) and steps[2] < 2.0


@pytest.mark.parametrize("optimizer, iterations, lr, threshold, tol",
                         [("gauss-newton", 40, 0.05, 1e-2, 0.01), ("adam", 2000, 0.1, 1e-3, 0.07)])
def test_collocation_reaches_the_analytic_optimum_of_a_linear_quadratic_problem(
        optimizer, iterations, lr, threshold, tol):
    """z' = z + a / 2, r(z) = -||z - g||^2, |a| <= 1, from z_0 = 0: the optimum is a_0 = 2 g
    (reaching g in one step, then staying there), and the dynamics violation of the final plan
    is below the threshold. (The first-order alternative needs 50 times the iterations and
    still ends further from the optimum, as LatCo's paper found.)"""
    torch.manual_seed(0)
    cfg = LatCoConfig(horizon=6, iterations=iterations, optimizer=optimizer, lr=lr,
                      dyn_threshold=threshold)
    planner = LatCoPlanner(cfg, 2, generator=torch.Generator().manual_seed(0))
    trace = []
    a0 = planner(linear_problem(), torch.zeros(2), trace=trace)
    torch.testing.assert_close(a0, torch.tensor([1.0, -0.6]), atol=tol, rtol=0)
    assert float(trace[-1]["dynamics"][0]) < cfg.dyn_threshold * cfg.horizon
    z = trace[-1]["z"][0]
    torch.testing.assert_close(z[1:], torch.tensor([0.5, -0.3]).expand(6, 2), atol=0.05, rtol=0)
    # the multipliers relax once the constraint holds: lambda fell from its initial 1
    assert float(trace[-1]["lam"][0]) < cfg.init_lam


def test_warm_start_shifts_the_previous_plan():
    planner = LatCoPlanner(LatCoConfig(horizon=4, iterations=5, warm_iterations=0), 2,
                           generator=torch.Generator().manual_seed(0))
    planner(linear_problem(), torch.zeros(2))
    z, a, lam, nu = planner.last
    z1, a1, lam1, _ = planner.initial(torch.ones(1, 1, 2))
    torch.testing.assert_close(z1[:, 0], torch.ones(1, 2))
    torch.testing.assert_close(z1[:, 1:-1], z[:, 2:])
    torch.testing.assert_close(a1[:, :-1], a[:, 1:])
    torch.testing.assert_close(lam1[:, :-1], lam[:, 1:])


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="gauss-newton"):
        LatCoPlanner(LatCoConfig(optimizer="newton"), 1)


def test_mppi_finds_the_maximum_of_a_known_function():
    target = torch.tensor([[0.3], [-0.5], [0.8]])
    objective = lambda actions: -(actions - target).pow(2).sum((1, 2))  # noqa: E731
    a0 = mppi_plan(objective, 3, 1, candidates=500, top_k=50, iterations=8, temperature=20.0,
                   min_std=0.01, generator=torch.Generator().manual_seed(0))
    assert float(a0) == pytest.approx(0.3, abs=0.05)


def test_value_bootstrap_equals_eq10_on_a_hand_case():
    """Rewards r(z_k) = z_k, V(z) = 10 z, z' = z + a, gamma = 0.5, plan z = (1, 2, 3),
    a = (0, 0, 4): R = 1 + 0.5 * 2 + 0.25 * 3 + 0.125 * V(3 + 4) = 2.75 + 8.75."""
    problem = LatentProblem(transition=lambda z, a: z + a, reward=lambda z: z[..., 0],
                            value=lambda z: 10 * z[..., 0], discount=0.5)
    z = torch.tensor([[[1.0], [2.0], [3.0]]])
    a = torch.tensor([[[0.0], [0.0], [4.0]]])
    assert float(plan_return(problem, z, a)) == pytest.approx(11.5)
    # the targets of every planned state: V*(z_2) = 3 + 0.5 * 70, V*(z_1) = 2 + 0.5 V*(z_2) ...
    targets = value_targets(problem, z, a)[0]
    torch.testing.assert_close(targets, torch.tensor([11.5, 21.0, 38.0]))
    without = LatentProblem(problem.transition, problem.reward, discount=0.5)
    assert float(plan_return(without, z, a)) == pytest.approx(2.75)


def test_rollout_follows_the_mean_transition():
    z = rollout(linear_problem(), torch.zeros(1, 2), torch.ones(1, 4, 2))
    torch.testing.assert_close(z[0, :, 0], torch.tensor([0.0, 0.5, 1.0, 1.5]))


def test_value_trained_inside_the_planning_loop_learns_the_optimal_value():
    """ColloDreamer's second method on a problem with a known value: z' = z + a / 2, |a| <= 1,
    r(z) = -|z| (smoothed: -sqrt(z^2 + 0.01)), gamma = 0.9. The best policy walks to 0 at
    speed 1/2, so V*(z) is a finite sum. V, learned only from the planner's eq. 10 targets
    (from random start states, bootstrapped by itself), must order the states as V* does and
    come within a third of its scale (untrained, it is off by its whole scale). The value
    steps use the second half of each cold-started optimisation: its first iterations are
    random plans, which the agent, warm-started from its last plan, does not see."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.ELU(), torch.nn.Linear(32, 1))
    value = lambda z: net(z).squeeze(-1)  # noqa: E731
    reward = lambda z: -torch.sqrt(z[..., 0] ** 2 + 0.01)  # noqa: E731
    problem = LatentProblem(lambda z, a: z + 0.5 * a, reward, value, discount=0.9)
    optim = torch.optim.Adam(net.parameters(), lr=3e-3)
    cfg = LatCoConfig(horizon=5, iterations=16, plans=16, warm_start=False, reward_scale=1.0)
    planner = LatCoPlanner(cfg, 1, generator=torch.Generator().manual_seed(0))
    calls = [0]

    def train_value(z, a):
        calls[0] += 1
        if calls[0] % cfg.iterations < cfg.iterations // 2:
            return
        targets = value_targets(problem, z, a)
        loss = 0.5 * (value(z) - targets).pow(2).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()

    def v_star(z0, steps=200):
        z, total = abs(z0), 0.0
        for k in range(steps):
            total += 0.9 ** k * -math.sqrt(z * z + 0.01)
            z = max(z - 0.5, 0.0)
        return total

    grid = torch.linspace(-3, 3, 13)[:, None]
    expected = torch.tensor([v_star(float(x)) for x in grid])
    scale = expected.abs().mean()
    with torch.no_grad():
        assert (value(grid) - expected).abs().mean() > 0.8 * scale  # untrained
    for _ in range(40):
        starts = (torch.rand(16, 1, 1) - 0.5) * 8
        z, a, lam, nu = planner.initial(starts)
        planner.optimize(problem, z, a, lam, nu, cfg.iterations, on_iteration=train_value)
    with torch.no_grad():
        learned = value(grid)
    assert torch.corrcoef(torch.stack([learned, expected]))[0, 1] > 0.95
    assert (learned - expected).abs().mean() < 0.35 * scale
