"""A damped Gauss-Newton (Levenberg-Marquardt) step for chain-structured least squares: LatCo's
primal optimiser (Rybkin et al. 2021, section 4.3; zchuning/latco's ``gn_solver``).

The plan is a chain ``x_0, ..., x_{T-1}`` (each ``x_t = [z_t, a_t]``) and the objective a sum
of squared residuals, each touching one step or two neighbouring steps::

    E(x) = sum_t ||u_t(x_t)||^2 + sum_{t>=1} ||p_t(x_{t-1}, x_t)||^2.

So the Gauss-Newton matrix ``J^T J`` is block-tridiagonal, and one step

    (J^T J + delta I) dx = J^T r,        x <- x - dx

costs T small Cholesky factorisations instead of one of size T * n.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Residual = Callable[..., torch.Tensor]


def jacobian_rows(fn: Residual, inputs: tuple[torch.Tensor, ...], index: torch.Tensor
                  ) -> tuple[torch.Tensor, list]:
    """The residuals ``fn(*inputs, index)`` ``[N, m]`` and their Jacobians ``[N, m, n_k]``
    with respect to each input ``[N, n_k]``, for a function that treats the N rows
    independently; ``index`` ``[N]`` tells ``fn`` which row is which (it is not differentiated).

    One backward pass gives all m rows: each input row is repeated m times, and copy j
    back-propagates only output j (the same as ``torch.func.vmap(jacrev(fn))``, with plain
    autograd, which every module and device supports)."""
    with torch.no_grad():
        m = fn(*inputs, index).shape[-1]
    rep = [x.detach().repeat_interleave(m, 0).requires_grad_(True) for x in inputs]
    with torch.enable_grad():
        out = fn(*rep, index.repeat_interleave(m, 0))                   # [N * m, m]
        eye = torch.eye(m, device=out.device, dtype=out.dtype).repeat(len(inputs[0]), 1)
        grads = torch.autograd.grad((out * eye).sum(), rep, allow_unused=True)
    N = len(inputs[0])
    jac = [torch.zeros(N, m, x.shape[-1], device=x.device, dtype=x.dtype) if g is None
           else g.view(N, m, -1) for g, x in zip(grads, inputs)]
    value = out.detach().view(N, m, m).diagonal(dim1=1, dim2=2)         # out[i*m + j, j]
    return value, jac


def block_tridiagonal_solve(D: torch.Tensor, B: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Solve ``M x = g`` for a symmetric positive definite block-tridiagonal ``M``.

    ``D`` ``[P, T, n, n]``: the diagonal blocks ``M_tt``; ``B`` ``[P, T-1, n, n]``: the blocks
    below it, ``M_{t+1,t}``; ``g`` ``[P, T, n]``. Block Cholesky: ``L_0 = chol(D_0)``,
    ``C_t = B_t L_t^-T``, ``L_{t+1} = chol(D_{t+1} - C_t C_t^T)``, then a forward and a backward
    substitution. Batched over the P plans."""
    T = D.shape[1]
    L, C = [torch.linalg.cholesky(D[:, 0])], []
    for t in range(T - 1):
        # C_t = B_t L_t^{-T}  <=>  L_t C_t^T = B_t^T
        c = torch.linalg.solve_triangular(L[t], B[:, t].mT, upper=False).mT
        C.append(c)
        L.append(torch.linalg.cholesky(D[:, t + 1] - c @ c.mT))
    y = [torch.linalg.solve_triangular(L[0], g[:, 0, :, None], upper=False)]
    for t in range(1, T):
        y.append(torch.linalg.solve_triangular(L[t], g[:, t, :, None] - C[t - 1] @ y[t - 1],
                                               upper=False))
    x = [None] * T
    x[T - 1] = torch.linalg.solve_triangular(L[T - 1].mT, y[T - 1], upper=True)
    for t in range(T - 2, -1, -1):
        x[t] = torch.linalg.solve_triangular(L[t].mT, y[t] - C[t].mT @ x[t + 1], upper=True)
    return torch.stack(x, 1)[..., 0]


def energy(unary: Residual, pair: Residual, x: torch.Tensor) -> torch.Tensor:
    """``E(x)`` per chain ``[P]``: the sum of the squared residuals."""
    P, T, n = x.shape
    with torch.no_grad():
        u = unary(x.reshape(P * T, n), torch.arange(P * T, device=x.device))
        p = pair(x[:, :-1].reshape(-1, n), x[:, 1:].reshape(-1, n),
                 torch.arange(P * (T - 1), device=x.device))
    return u.pow(2).view(P, -1).sum(1) + p.pow(2).view(P, -1).sum(1)


def gauss_newton_step(unary: Residual, pair: Residual, x: torch.Tensor,
                      damping: float | torch.Tensor = 1e-3) -> torch.Tensor:
    """One damped Gauss-Newton step (see `_gauss_newton`): the new chains ``[P, T, n]``."""
    return _gauss_newton(unary, pair, x, damping)[0]


def _gauss_newton(unary: Residual, pair: Residual, x: torch.Tensor,
                  damping: float | torch.Tensor = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """One damped Gauss-Newton step on ``E(x)`` for a batch of chains ``x`` ``[P, T, n]``.

    ``unary(x_t [N, n], i [N]) -> [N, m_u]``: the residuals of one step (for example the
    start state's pin at t = 0, a terminal value at t = T-1; zero rows elsewhere), where row
    ``i`` is plan ``i // T``, step ``i % T``;
    ``pair(x_{t-1} [N, n], x_t [N, n], i [N]) -> [N, m_p]``: the residuals linking two steps,
    row ``i`` being plan ``i // (T-1)``, step ``t = i % (T-1) + 1``. Both must treat rows
    independently. ``damping``: delta, a number or one per chain ``[P]``. The linear system is
    solved in float64, as in LatCo's solver. Returns the stepped chains and ``E`` at ``x``
    (from the residuals the Jacobians came with)."""
    P, T, n = x.shape
    u, (Ju,) = jacobian_rows(unary, (x.reshape(P * T, n),),
                             torch.arange(P * T, device=x.device))
    p, (Ja, Jb) = jacobian_rows(pair, (x[:, :-1].reshape(-1, n), x[:, 1:].reshape(-1, n)),
                                torch.arange(P * (T - 1), device=x.device))
    f64 = torch.float64
    u, Ju = u.view(P, T, -1).to(f64), Ju.view(P, T, -1, n).to(f64)
    p, Ja, Jb = (p.view(P, T - 1, -1).to(f64), Ja.view(P, T - 1, -1, n).to(f64),
                 Jb.view(P, T - 1, -1, n).to(f64))
    delta = torch.as_tensor(damping, dtype=f64, device=x.device).reshape(-1, 1, 1, 1)
    # Diagonal blocks: every residual that touches x_t; below them: the pairs (x_{t-1}, x_t).
    D = Ju.mT @ Ju + delta * torch.eye(n, dtype=f64, device=x.device)
    D[:, 1:] += Jb.mT @ Jb
    D[:, :-1] += Ja.mT @ Ja
    Bl = Jb.mT @ Ja                                                   # M_{t,t-1}, t = 1..T-1
    g = (Ju.mT @ u[..., None])[..., 0]
    g[:, 1:] += (Jb.mT @ p[..., None])[..., 0]
    g[:, :-1] += (Ja.mT @ p[..., None])[..., 0]
    dx = block_tridiagonal_solve(D, Bl, g)
    current = u.pow(2).sum((1, 2)) + p.pow(2).sum((1, 2))
    return x - dx.to(x.dtype), current.to(x.dtype)


def levenberg_marquardt_step(unary: Residual, pair: Residual, x: torch.Tensor,
                             damping: torch.Tensor, low: float = 1e-3, high: float = 1e6
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """A Gauss-Newton step kept only where it lowers ``E`` (Levenberg-Marquardt): a chain whose
    energy rose keeps its old plan and takes ten times the damping (a shorter, more
    gradient-like step next time); one whose energy fell takes the step and a tenth of the
    damping (down to ``low``). Returns the new plans and dampings ``[P]``."""
    step, current = _gauss_newton(unary, pair, x, damping)
    better = energy(unary, pair, step) <= current
    x = torch.where(better[:, None, None], step, x)
    damping = torch.where(better, damping / 10, damping * 10).clamp(low, high)
    return x, damping


__all__ = ["block_tridiagonal_solve", "energy", "gauss_newton_step", "jacobian_rows",
           "levenberg_marquardt_step"]
