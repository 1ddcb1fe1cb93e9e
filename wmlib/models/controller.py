"""C: the linear controller of World Models (Ha & Schmidhuber 2018).

    a_t = tanh(W_c [z_t, h_t] + b_c)

mapped onto the action box as the original code does for CarRacing: steer stays in [-1, 1],
gas becomes (x + 1) / 2 in [0, 1] and brake is clipped, max(x, 0), in [0, 1]. With the clip a
controller with zero parameters drives straight on half gas without braking (an affine brake
would brake at 0.5 and barely move), which is where CMA-ES starts; ``brake_clip=False`` maps
every dimension affinely from [-1, 1] onto [low, high]. With z in R^32 and h in R^256 C has
(32 + 256) * 3 + 3 = 867 parameters (32 * 3 + 3 = 99 from z alone), few enough for CMA-ES.
It is plain numpy, so evaluating a population of controllers costs no autograd overhead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

CAR_RACING_LOW = (-1.0, 0.0, 0.0)  # steer, gas, brake
CAR_RACING_HIGH = (1.0, 1.0, 1.0)


class Controller:
    """Single-layer controller on [z_t, h_t] (or on z_t alone with ``use_hidden=False``)."""

    def __init__(self, latent_dim: int = 32, hidden_dim: int = 256, action_dim: int = 3,
                 use_hidden: bool = True, low: Sequence[float] = CAR_RACING_LOW,
                 high: Sequence[float] = CAR_RACING_HIGH, brake_clip: bool = True):
        if len(low) != action_dim or len(high) != action_dim:
            raise ValueError(f"low and high need {action_dim} entries, got {low} and {high}")
        if brake_clip and action_dim != 3:
            raise ValueError("brake_clip is CarRacing's mapping (steer, gas, brake); "
                             "pass brake_clip=False for other action spaces")
        self.use_hidden, self.brake_clip = use_hidden, brake_clip
        self.latent_dim, self.hidden_dim = latent_dim, hidden_dim
        self.in_dim = latent_dim + (hidden_dim if use_hidden else 0)
        self.W = np.zeros((action_dim, self.in_dim))
        self.b = np.zeros(action_dim)
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)

    @property
    def num_params(self) -> int:
        return self.W.size + self.b.size

    def get_params(self) -> np.ndarray:
        """Flat vector [vec(W), b] for CMA-ES."""
        return np.concatenate([self.W.ravel(), self.b])

    def set_params(self, params: np.ndarray) -> None:
        params = np.asarray(params, dtype=float)
        if params.shape != (self.num_params,):
            raise ValueError(f"expected {self.num_params} parameters, got shape {params.shape}")
        self.W = params[: self.W.size].reshape(self.W.shape).copy()
        self.b = params[self.W.size :].copy()

    def __call__(self, z: np.ndarray | torch.Tensor,
                 h: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """Actions (..., action_dim) for z (..., latent_dim) and h (..., hidden_dim)."""
        x = _numpy(z)
        if self.use_hidden:
            if h is None:
                raise ValueError("this controller reads [z, h]; pass the MDN-RNN hidden state h")
            x = np.concatenate([x, _numpy(h)], -1)
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"this controller reads {self.in_dim} inputs, got {x.shape[-1]}")
        squashed = np.tanh(x @ self.W.T + self.b)
        action = self.low + (squashed + 1.0) / 2.0 * (self.high - self.low)
        if self.brake_clip:
            action[..., 2] = np.clip(squashed[..., 2], 0.0, 1.0)
        return action


def _numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
