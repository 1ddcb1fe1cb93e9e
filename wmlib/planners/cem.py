"""The cross-entropy method (CEM) over action sequences, as PlaNet plans (Hafner et al. 2019,
arXiv:1811.04551, Algorithm 2 in Appendix B)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from wmlib.devices import check_generator


def cem_plan(objective: Callable[[torch.Tensor], torch.Tensor], horizon: int, action_dim: int,
             candidates: int = 1000, top_k: int = 100, iterations: int = 10,
             low: float = -1.0, high: float = 1.0, device=None,
             generator: torch.Generator | None = None, trace: list | None = None) -> torch.Tensor:
    """Return mu_t, the first action of the refitted belief q(a_{t:t+H}) = N(mu, sigma^2 I).

    H = ``horizon``, J = ``candidates``, K = ``top_k``, I = ``iterations`` (PlaNet: 12, 1000, 100,
    10). Pass a list as ``trace`` to receive one dict per iteration (mean, std, returns) for plots.
    """
    check_generator(generator, device)
    # q(a_{t:t+H}) starts at zero mean and unit variance.
    mu = torch.zeros(horizon, action_dim, device=device)
    sigma = torch.ones(horizon, action_dim, device=device)
    for _ in range(iterations):
        # a^(j) ~ q(a_{t:t+H}), clipped to the action bounds.
        noise = torch.randn(candidates, horizon, action_dim, device=device, generator=generator)
        actions = (mu + sigma * noise).clamp(low, high)
        # R^(j): the return of each candidate under the model.
        returns = objective(actions)
        # K = argsort({R^(j)})_{1:K}: the top-K sequences.
        elite = actions[returns.topk(top_k).indices]
        # Refit the belief to the elites. (PlaNet's Algorithm 2 writes sigma as the mean absolute
        # deviation with 1/(K-1); we use the standard deviation, as PlaNet's code and most ports
        # do.)
        mu, sigma = elite.mean(0), elite.std(0, unbiased=False)
        if trace is not None:
            trace.append({"mean": mu.cpu().clone(), "std": sigma.cpu().clone(),
                          "returns": returns.detach().cpu().clone()})
    return mu[0]
