"""Random shooting (J. Vitay's lecture "Planning with learned world models", TU Chemnitz,
"Random-sampling shooting"): sample J action sequences, evaluate each with the model, return the
first action of the best one."""

from __future__ import annotations

from collections.abc import Callable

import torch

from wmlib.devices import check_generator


def random_shooting(objective: Callable[[torch.Tensor], torch.Tensor], horizon: int,
                    action_dim: int, candidates: int = 1000, low: float = -1.0, high: float = 1.0,
                    device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a_t of the best of ``candidates`` sequences drawn uniformly from [low, high]."""
    check_generator(generator, device)
    u = torch.rand(candidates, horizon, action_dim, device=device, generator=generator)
    actions = low + (high - low) * u                 # a^(j)_{t:t+H} ~ U(low, high)
    returns = objective(actions)                     # R^(j)
    best = returns.argmax().view(1)                  # argmax_j R^(j), kept on the device
    return actions[best, 0][0]                       # its first action a_t
