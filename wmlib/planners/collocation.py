"""Latent collocation: plan the latent states and the actions together (LatCo: O. Rybkin,
C. Zhu, A. Nagabandi, K. Daniilidis, I. Mordatch, S. Levine, "Model-Based Reinforcement Learning
via Latent-Space Collocation", ICML 2021, arXiv:2106.13229), and ColloDreamer's return with a
learned value at the end of the horizon (M. Wan and J. Chen, "ColloDreamer: Latent Dynamics with
Collocation and Value Networks", UC Berkeley). Equation numbers are Wan and Chen's.

Shooting (random shooting, CEM, MPPI) searches actions only and reaches the states by rolling the
model forward, so a long horizon compounds model error and a sparse reward gives it nothing to
follow. Collocation makes the states ``z_1..z_H`` decision variables too and asks the dynamics
to hold only as a constraint, eq. (6):

    min_lambda max_{z, a}  R(z, a) - sum_t lambda_t (||z_{t+1} - mean q(z_t, a_t)||^2 - eps)
                                   - sum_t lambda_t (||std_{t+1} - std q(z_t, a_t)||^2 - eps)
                                   - sum_t nu_t (||clip(|a_t| - 1, 0)||^2 - eps_a),

relaxed at first (small multipliers: the states may jump to where the reward is) and enforced
later, as the multipliers grow by eq. (7) until every violation is below its threshold.

* `plan_return`: R, the finite sum of eq. (8) or, with a value, the bootstrapped eq. (9)/(10);
  `value_targets`: eq. (10) from every planned state, ColloDreamer's value targets;
* `dynamics_violation`, `variance_violation`, `action_violation`: the constraint terms;
* `lagrangian`: eq. (6); `update_multipliers`: eq. (7);
* `LatCoPlanner`: the optimisation, with LatCo's Gauss-Newton steps on the residuals
  (`wmlib.planners.gauss_newton`) or Adam on eq. (6), parallel plans, warm starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from wmlib.devices import check_generator
from wmlib.planners.gauss_newton import levenberg_marquardt_step

Fn = Callable[..., torch.Tensor]


@dataclass
class LatentProblem:
    """What collocation needs from a world model, as functions of latent features ``z``.

    ``transition(z [..., F], a [..., A]) -> [..., F]``: the mean of ``q(z_{t+1} | z_t, a_t)``;
    ``reward(z) -> [...]``: ``r(z)``; ``value(z) -> [...]``: ColloDreamer's ``V(z)`` (None for
    LatCo's finite return); ``discount``: gamma of eq. (10) (1: the undiscounted eq. (9)).
    ``transition_std(z, a) -> [..., S]``: the std of q's stochastic part, located in ``z`` at
    ``stoch`` (a slice), for eq. (6)'s variance term (optional)."""

    transition: Fn
    reward: Fn
    value: Fn | None = None
    discount: float = 1.0
    transition_std: Fn | None = None
    stoch: slice | None = None


def plan_return(problem: LatentProblem, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The planned return ``[P]`` of states ``z`` ``[P, H+1, F]`` (``z_0`` the start) and
    actions ``a`` ``[P, H+1, A]``:

        R = sum_{k=0}^{H} gamma^k r(z_k)                                  (eq. 8; gamma = 1)
          + gamma^{H+1} V(mean q(z_H, a_H))                  (eq. 9, discounted: eq. 10)

    Eq. (10) weighs the value by gamma^{t+H}; the value is taken one step past ``z_H``, so with
    t = 0 Bellman's equation asks for gamma^{H+1}, which is what we use."""
    steps = z.shape[1]
    weights = problem.discount ** torch.arange(steps, device=z.device, dtype=z.dtype)
    R = (weights * problem.reward(z)).sum(1)
    if problem.value is not None:
        R = R + problem.discount ** steps * problem.value(problem.transition(z[:, -1], a[:, -1]))
    return R


def value_targets(problem: LatentProblem, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Eq. (10) from every state of a plan, the targets that train ColloDreamer's value inside
    the planning loop (Algorithm 1, "Update V(z_t)"), ``[P, H+1]``, without gradient:

        V*(z_k) = sum_{j=k}^{H} gamma^{j-k} r(z_j) + gamma^{H+1-k} V(mean q(z_H, a_H)).

    `wmlib.objectives.lambda_return` with lambda = 1 computes it backwards."""
    from wmlib.objectives import lambda_return

    with torch.no_grad():
        rewards = problem.reward(z).transpose(0, 1)                               # [H+1, P]
        bootstrap = problem.value(problem.transition(z[:, -1], a[:, -1]))         # [P]
        discounts = torch.full_like(rewards, problem.discount)
        return lambda_return(rewards, torch.zeros_like(rewards), discounts, bootstrap,
                             1.0).transpose(0, 1)


def dynamics_violation(problem: LatentProblem, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``||z_{t+1} - mean q(z_t, a_t)||^2`` for t = 0..H-1: ``[P, H]`` (eq. 6, mean term)."""
    return (z[:, 1:] - problem.transition(z[:, :-1], a[:, :-1])).pow(2).sum(-1)


def variance_violation(problem: LatentProblem, z: torch.Tensor, a: torch.Tensor,
                       std: torch.Tensor) -> torch.Tensor:
    """``||std_{t+1} - sg(std q(z_t, a_t))||^2``: ``[P, H]`` (eq. 6, variance term), for a plan
    ``p(z_t) = N(z_t, std_t^2)`` over the stochastic part. The model's std is not
    differentiated, as in zchuning/latco's probabilistic LatCo: the term moves the plan's
    uncertainty towards the model's, not the model's towards the plan."""
    target = problem.transition_std(z[:, :-1], a[:, :-1]).detach()
    return (std[:, 1:] - target).pow(2).sum(-1)


def action_violation(a: torch.Tensor, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """``||clip(a - high, 0) + clip(low - a, 0)||^2`` per step: ``[P, H+1]`` (zero inside the
    bounds; for [-1, 1] it is LatCo's ``clip(|a| - 1, 0)``)."""
    return (F.relu(a - high) + F.relu(low - a)).pow(2).sum(-1)


def lagrangian(problem: LatentProblem, z: torch.Tensor, a: torch.Tensor, lam: torch.Tensor,
               nu: torch.Tensor, dyn_threshold: float, act_threshold: float,
               std: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. (6) per plan ``[P]``: the return minus the multiplier-weighted violations.
    ``lam`` ``[P, H]`` multiplies the dynamics terms (mean, and variance when ``std`` is
    given), ``nu`` ``[P, H+1]`` the action bounds."""
    constraint = dynamics_violation(problem, z, a) - dyn_threshold
    if std is not None:
        constraint = constraint + variance_violation(problem, z, a, std) - dyn_threshold
    return (plan_return(problem, z, a) - (lam * constraint).sum(1)
            - (nu * (action_violation(a) - act_threshold)).sum(1))


def update_multipliers(mult: torch.Tensor, violation: torch.Tensor, threshold: float,
                       alpha: float = 0.1, eta: float = 0.1) -> torch.Tensor:
    """Eq. (7), dual ascent on a multiplier: ``lambda + alpha log(v / eps + eta) lambda``.

    It grows while the violation ``v`` is above the threshold ``eps`` and shrinks (for
    ``v < (1 - eta) eps``) once the constraint holds with room, multiplicatively, so a
    multiplier can span many orders of magnitude in a hundred steps. The logarithm is base 10
    and alpha = eta = 0.1, as in LatCo's released code."""
    return mult + alpha * torch.log10(violation / threshold + eta) * mult


@dataclass(frozen=True)
class LatCoConfig:
    """LatCo's planner settings (zchuning/latco for DeepMind Control: horizon 30, 100 Gauss-Newton
    steps with damping 1e-3, multipliers starting at 1, thresholds 1e-2, one plan).

    ``damping``: the smallest Levenberg-Marquardt damping (LatCo's fixed ``gn_damping``; here
    it grows tenfold after a step that would raise the objective, which LatCo's code does not
    do: without it the kinks of the action bounds made the steps oscillate in our tests).
    ``reward_scale``: rewards enter the Gauss-Newton residual ``softplus(-r / scale)`` (LatCo
    uses scale 1 with rewards of about 1 per step; use about the largest reward per step).
    ``warm_iterations``: steps after a warm start, which begins from the previous plan shifted
    by one step (with its multipliers unless ``warm_multipliers`` is off) rather than from
    noise."""

    horizon: int = 30
    iterations: int = 100
    warm_iterations: int = 100
    warm_start: bool = True
    warm_multipliers: bool = True       # keep the shifted multipliers too (False: reset them)
    plans: int = 1
    optimizer: str = "gauss-newton"     # or "adam" on eq. (6)
    damping: float = 1e-3
    lr: float = 0.05
    init_lam: float = 1.0
    init_nu: float = 1.0
    dyn_threshold: float = 1e-2
    act_threshold: float = 1e-2
    alpha: float = 0.1
    eta: float = 0.1
    reward_scale: float = 1.0
    pin: float = 1000.0                 # weight that holds z_0 at the observed state
    low: float = -1.0
    high: float = 1.0


OPTIMIZERS = ("gauss-newton", "adam")


class LatCoPlanner:
    """Model-predictive control by latent collocation: ``planner(problem, z0) -> a_0``.

    Keeps the last plan to warm-start the next call (`reset` at each episode's start). With a
    list in ``trace``, each iteration appends the violations, the multipliers, the plan's
    return and states (for figures). ``on_iteration(z, a)`` is called after every iteration:
    ColloDreamer trains its value network there."""

    def __init__(self, cfg: LatCoConfig, action_dim: int, device=None,
                 generator: torch.Generator | None = None):
        if cfg.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; choose one of {OPTIMIZERS}.")
        check_generator(generator, device)
        self.cfg, self.action_dim, self.device, self.generator = cfg, action_dim, device, generator
        self.reset()

    def reset(self) -> None:
        self.last: tuple[torch.Tensor, ...] | None = None

    def initial(self, z0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A cold start as LatCo's: states and actions drawn from N(0, 1), multipliers at their
        initial values; or the previous plan shifted by one step when warm-starting."""
        cfg, P, T = self.cfg, self.cfg.plans, self.cfg.horizon + 1
        if cfg.warm_start and self.last is not None:
            z, a, lam, nu = (torch.cat([x[:, 1:], x[:, -1:]], 1) for x in self.last)
            z = torch.cat([z0.expand(P, 1, -1), z[:, 1:]], 1)
            if not cfg.warm_multipliers:  # relax the dynamics again at every decision
                lam, nu = torch.full_like(lam, cfg.init_lam), torch.full_like(nu, cfg.init_nu)
            return z, a, lam, nu
        randn = lambda *s: torch.randn(*s, device=self.device, generator=self.generator)  # noqa
        z = torch.cat([z0.expand(P, 1, -1), randn(P, T - 1, z0.shape[-1])], 1)
        a = randn(P, T, self.action_dim)
        lam = torch.full((P, T - 1), cfg.init_lam, device=self.device)
        nu = torch.full((P, T), cfg.init_nu, device=self.device)
        return z, a, lam, nu

    def __call__(self, problem: LatentProblem, z0: torch.Tensor, trace: list | None = None,
                 on_iteration: Callable | None = None) -> torch.Tensor:
        """Plan from the latent state ``z0`` ``[F]``; return the first action ``[A]``."""
        cfg = self.cfg
        warm = cfg.warm_start and self.last is not None
        z, a, lam, nu = self.initial(z0.reshape(1, 1, -1))
        iterations = cfg.warm_iterations if warm else cfg.iterations
        z, a, lam, nu = self.optimize(problem, z, a, lam, nu, iterations, trace, on_iteration)
        self.last = (z, a, lam, nu)
        # The plan executed is the one whose clipped actions score best when rolled through the
        # model from z0 (LatCo): a plan whose states cheat on the dynamics is not trusted.
        with torch.no_grad():
            actions = a.clamp(cfg.low, cfg.high)
            best = plan_return(problem, rollout(problem, z[:, 0], actions), actions).argmax()
        return actions[best.view(1), 0][0]       # indexed on the device, no sync

    def optimize(self, problem, z, a, lam, nu, iterations, trace=None, on_iteration=None):
        """``iterations`` primal steps, each followed by eq. (7) on both multipliers."""
        cfg = self.cfg
        used = torch.ones(a.shape[1], device=a.device)   # the actions that enter the objective
        if problem.value is None:
            used[-1] = 0.0
        adam = None
        damping = torch.full((z.shape[0],), cfg.damping, device=z.device, dtype=torch.float64)
        if cfg.optimizer == "adam":
            z, a = z.clone().requires_grad_(True), a.clone().requires_grad_(True)
            adam = torch.optim.Adam([z, a], lr=cfg.lr)
        for _ in range(iterations):
            if adam is None:
                z, a, damping = self.gauss_newton(problem, z, a, lam, nu, damping)
            else:
                adam.zero_grad()
                with torch.enable_grad():
                    loss = -lagrangian(problem, torch.cat([z[:, :1].detach(), z[:, 1:]], 1), a,
                                       lam, nu, cfg.dyn_threshold, cfg.act_threshold).sum()
                    loss.backward()
                adam.step()
            with torch.no_grad():
                zd, ad = z.detach(), a.detach()
                dyn, act = dynamics_violation(problem, zd, ad), action_violation(ad)
                if problem.value is None:  # a_H feeds only the value: without one it is free
                    act = act * used
                lam = update_multipliers(lam, dyn, cfg.dyn_threshold, cfg.alpha, cfg.eta)
                nu = torch.where(used > 0, update_multipliers(nu, act, cfg.act_threshold,
                                                              cfg.alpha, cfg.eta), nu)
            if trace is not None:
                with torch.no_grad():
                    trace.append({"dynamics": dyn.sum(1).cpu(), "actions": act.sum(1).cpu(),
                                  "lam": lam.mean(1).cpu(), "nu": nu.mean(1).cpu(),
                                  "return": plan_return(problem, zd, ad).cpu(),
                                  "z": zd.cpu().clone(), "a": ad.cpu().clone()})
            if on_iteration is not None:
                on_iteration(zd, ad)
        return z.detach(), a.detach(), lam, nu

    def gauss_newton(self, problem, z, a, lam, nu, damping):
        """One Levenberg-Marquardt step (`levenberg_marquardt_step`: Gauss-Newton with the
        damping raised where a step would increase the objective) on the residuals whose
        squares sum to LatCo's objective:

            pin:        pin (z_0 - z_obs)                                        (t = 0)
            dynamics:   c sqrt(lambda_t) (z_{t+1} - mean q(z_t, a_t))
            actions:    c sqrt(nu_t) clip(|a_t| - 1, 0)
            reward:     c gamma^{t/2} softplus(-r(z_{t+1}) / scale)
            value:      c gamma^{(H+1)/2} softplus(-V(mean q(z_H, a_H)) / scale)  (ColloDreamer)

        with ``c = 1 / (mean sqrt(lambda) + mean sqrt(nu) + 1)`` per plan (LatCo's scaling).
        Squared ``softplus(-r)`` falls as r rises: maximising the reward becomes least squares."""
        cfg = self.cfg
        P, T, Fz = z.shape
        gamma, scale = problem.discount, cfg.reward_scale
        z0 = z[:, 0]
        nu_used = nu if problem.value is not None else nu[:, :-1]
        c = 1.0 / (lam.sqrt().mean(1) + nu_used.sqrt().mean(1) + 1.0)                 # [P]
        x = torch.cat([z, a], -1)

        def unary(xs, i):
            plan, t = i // T, i % T
            zs, acts = xs[:, :Fz], xs[:, Fz:]
            rows = [cfg.pin * (zs - z0[plan]) * (t == 0)[:, None]]
            if problem.value is not None:
                last = (t == T - 1)[:, None] * c[plan, None]
                v = problem.value(problem.transition(zs, acts))
                rows += [last * gamma ** (T / 2) * F.softplus(-v / scale)[:, None],
                         last * nu[plan, t].sqrt()[:, None]
                         * (F.relu(acts - cfg.high) + F.relu(cfg.low - acts))]
            return torch.cat(rows, -1)

        def pair(xa, xb, i):
            plan, t = i // (T - 1), i % (T - 1)            # the pair (x_t, x_{t+1})
            za, aa, zb = xa[:, :Fz], xa[:, Fz:], xb[:, :Fz]
            w = c[plan, None]
            dyn = lam[plan, t].sqrt()[:, None] * (zb - problem.transition(za, aa))
            act = nu[plan, t].sqrt()[:, None] * (F.relu(aa - cfg.high) + F.relu(cfg.low - aa))
            rew = gamma ** ((t + 1) / 2)[:, None] * F.softplus(-problem.reward(zb) / scale)[:, None]
            return w * torch.cat([dyn, act, rew], -1)

        x, damping = levenberg_marquardt_step(unary, pair, x, damping, low=cfg.damping)
        return x[..., :Fz], x[..., Fz:], damping


def rollout(problem: LatentProblem, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """The states ``[P, H+1, F]`` reached from ``z0`` ``[P, F]`` by the model's mean transition
    under ``actions`` ``[P, H+1, A]`` (the last action only feeds the value of eq. 9)."""
    states = [z0]
    for t in range(actions.shape[1] - 1):
        states.append(problem.transition(states[-1], actions[:, t]))
    return torch.stack(states, 1)


__all__ = ["OPTIMIZERS", "LatCoConfig", "LatCoPlanner", "LatentProblem", "action_violation",
           "dynamics_violation", "lagrangian", "plan_return", "rollout", "update_multipliers",
           "value_targets", "variance_violation"]
