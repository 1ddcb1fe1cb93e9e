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
              trace: list | None = None) -> torch.Tensor:
    """Return a_t, the first action of an elite drawn by its weight after the last refit.

    Each iteration samples J = ``candidates`` sequences from N(mu, sigma^2), scores them with
    the model (phi_Gamma, the predicted return), keeps the top K = ``top_k`` and refits

        Omega_i = exp(tau (phi*_i - max_j phi*_j))                       (importance weights)
        mu      = sum_i Omega_i Gamma*_i / sum_i Omega_i
        sigma   = max(sqrt(sum_i Omega_i (Gamma*_i - mu)^2 / sum_i Omega_i), epsilon)

    with tau = ``temperature`` and epsilon = ``min_std`` (subtracting the maximum leaves the
    weights' ratios unchanged and keeps exp finite). TD-MPC: tau 0.5, 6 iterations, K 64.
    """
    check_generator(generator, device)
    mu = torch.zeros(horizon, action_dim, device=device)
    sigma = torch.ones(horizon, action_dim, device=device)
    for _ in range(iterations):
        noise = torch.randn(candidates, horizon, action_dim, device=device, generator=generator)
        actions = (mu + sigma * noise).clamp(low, high)            # Gamma^(j) ~ N(mu, sigma^2)
        returns = objective(actions)                               # phi_Gamma^(j)
        top = returns.topk(top_k)
        elite, phi = actions[top.indices], top.values              # Gamma*_i, phi*_i
        omega = torch.exp(temperature * (phi - phi.max()))         # Omega_i
        w = (omega / omega.sum())[:, None, None]
        mu = (w * elite).sum(0)
        sigma = (w * (elite - mu) ** 2).sum(0).sqrt().clamp_min(min_std)
        if trace is not None:
            trace.append({"mean": mu.cpu().clone(), "std": sigma.cpu().clone(),
                          "returns": returns.detach().cpu().clone()})
    # "A trajectory is sampled from the final return-normalised distribution": an elite drawn
    # with probability Omega_i / sum Omega, kept on the device.
    pick = torch.multinomial(w.flatten(), 1, generator=generator)
    return elite[pick, 0][0]
