"""Model predictive path integral control (MPPI) as TD-MPC plans (Hansen et al. 2022,
"Temporal Difference Learning for Model Predictive Control", arXiv:2203.04955, section 3.2):
CEM's loop, with the elites averaged by their exponentiated returns instead of equally."""

from __future__ import annotations

from collections.abc import Callable

import torch

from wmlib.devices import check_generator


def mppi_plan(objective: Callable[[torch.Tensor], torch.Tensor], horizon: int, action_dim: int,
              candidates: int = 1000, top_k: int = 100, iterations: int = 10,
              temperature: float = 0.5, min_std: float = 0.05, low: float = -1.0,
              high: float = 1.0, device=None, generator: torch.Generator | None = None,
              trace: list | None = None, extra: torch.Tensor | None = None,
              init_mean: torch.Tensor | None = None, momentum: float = 0.0,
              init_std: float = 1.0, max_std: float | None = None,
              state: dict | None = None) -> torch.Tensor:
    """Return a_t, the first action of an elite drawn by its weight after the last refit.

    Each iteration samples J = ``candidates`` sequences from N(mu, sigma^2), scores them with
    the model (phi_Gamma, the predicted return), keeps the top K = ``top_k`` and refits

        Omega_i = exp(tau (phi*_i - max_j phi*_j))                       (importance weights)
        mu      = sum_i Omega_i Gamma*_i / sum_i Omega_i
        sigma   = max(sqrt(sum_i Omega_i (Gamma*_i - mu)^2 / sum_i Omega_i), epsilon)

    with tau = ``temperature`` and epsilon = ``min_std`` (subtracting the maximum leaves the
    weights' ratios unchanged and keeps exp finite). TD-MPC: tau 0.5, 6 iterations, K 64.

    TD-MPC's additions, all off by default (then the planner is exactly the one above):

    * ``extra``: fixed sequences ``[N_pi, H, A]`` (TD-MPC's N_pi trajectories of its policy
      pi_theta), scored beside the J Gaussian samples in every iteration and kept as elites
      when they rank in the top K;
    * ``init_mean``: the initial mean ``[H, A]`` (TD-MPC warm-starts from the previous step's
      mean shifted by one step; default zeros), ``init_std`` the initial sigma (TD-MPC: 2) and
      ``max_std`` an upper clamp of sigma (TD-MPC: 2);
    * ``momentum``: ``mu <- momentum * mu_old + (1 - momentum) * mu_new`` (TD-MPC: 0.1; sigma
      is refit around mu_new, as in the released code);
    * ``state``: a dict that receives the final ``mean`` and ``std`` (``[H, A]``), for the next
      step's warm start and TD-MPC's exploration noise.
    """
    check_generator(generator, device)
    if init_mean is None:
        mu = torch.zeros(horizon, action_dim, device=device)
    else:
        if tuple(init_mean.shape) != (horizon, action_dim):
            raise ValueError(f"init_mean must have shape (horizon, action_dim) = "
                             f"{(horizon, action_dim)}, got {tuple(init_mean.shape)}.")
        mu = init_mean.to(device=device, dtype=torch.float32).clone()
    if extra is not None and tuple(extra.shape[1:]) != (horizon, action_dim):
        raise ValueError(f"extra must have shape (N_pi, horizon, action_dim) = "
                         f"(N_pi, {horizon}, {action_dim}), got {tuple(extra.shape)}.")
    sigma = torch.full((horizon, action_dim), float(init_std), device=device)
    for _ in range(iterations):
        noise = torch.randn(candidates, horizon, action_dim, device=device, generator=generator)
        actions = (mu + sigma * noise).clamp(low, high)            # Gamma^(j) ~ N(mu, sigma^2)
        if extra is not None:                                      # + the N_pi fixed ones
            actions = torch.cat([actions, extra.to(actions)], 0)
        returns = objective(actions)                               # phi_Gamma^(j)
        top = returns.topk(top_k)
        elite, phi = actions[top.indices], top.values              # Gamma*_i, phi*_i
        omega = torch.exp(temperature * (phi - phi.max()))         # Omega_i
        w = (omega / omega.sum())[:, None, None]
        new_mu = (w * elite).sum(0)
        sigma = (w * (elite - new_mu) ** 2).sum(0).sqrt()
        sigma = sigma.clamp_min(min_std) if max_std is None else sigma.clamp(min_std, max_std)
        mu = momentum * mu + (1 - momentum) * new_mu if momentum else new_mu
        if trace is not None:
            trace.append({"mean": mu.cpu().clone(), "std": sigma.cpu().clone(),
                          "returns": returns.detach().cpu().clone()})
    if state is not None:
        state["mean"], state["std"] = mu, sigma
    # "A trajectory is sampled from the final return-normalised distribution": an elite drawn
    # with probability Omega_i / sum Omega, kept on the device.
    pick = torch.multinomial(w.flatten(), 1, generator=generator)
    return elite[pick, 0][0]
