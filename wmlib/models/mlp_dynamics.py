"""A learned one-step model of proprioceptive dynamics, M(s, a) = (s', r) (J. Vitay's lecture
"Planning with learned world models", TU Chemnitz, slides "MPC - Example with a neural model";
Nagabandi et al. 2017).

The network predicts the normalised change of state and the reward:
    s_{t+1} = s_t + sigma_delta * f_theta(norm(s_t), a_t) + mu_delta,    r_{t+1} = g_theta(...)
trained by mean squared error on transitions from the replay.
"""

from __future__ import annotations

import torch
from torch import nn

from wmlib.nets import mlp


class MLPDynamics(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 200, layers: int = 3):
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.net = mlp(obs_dim + action_dim, obs_dim + 1, hidden, layers, act="silu")
        for name, dim in [("obs_mean", obs_dim), ("obs_std", obs_dim),
                          ("delta_mean", obs_dim), ("delta_std", obs_dim)]:
            self.register_buffer(name, torch.zeros(dim) if "mean" in name else torch.ones(dim))

    @torch.no_grad()
    def fit_normalizer(self, obs: torch.Tensor, next_obs: torch.Tensor) -> None:
        """Set the input and target statistics from a batch of transitions."""
        delta = next_obs - obs
        self.obs_mean.copy_(obs.mean(0))
        self.obs_std.copy_(obs.std(0).clamp_min(1e-3))
        self.delta_mean.copy_(delta.mean(0))
        self.delta_std.copy_(delta.std(0).clamp_min(1e-3))

    def _raw(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(obs - self.obs_mean) / self.obs_std, action], -1)
        return self.net(x)

    def forward(self, obs: torch.Tensor, action: torch.Tensor):
        """(s_t, a_t) -> (s_{t+1}, r_{t+1}) predicted."""
        out = self._raw(obs, action)
        next_obs = obs + out[..., :-1] * self.delta_std + self.delta_mean
        return next_obs, out[..., -1]

    def loss(self, obs, action, next_obs, reward) -> dict[str, torch.Tensor]:
        out = self._raw(obs, action)
        target = (next_obs - obs - self.delta_mean) / self.delta_std
        state_loss = (out[..., :-1] - target).pow(2).mean()
        reward_loss = (out[..., -1] - reward).pow(2).mean()
        return {"loss": state_loss + reward_loss, "state_loss": state_loss,
                "reward_loss": reward_loss}

    @torch.no_grad()
    def rollout(self, obs: torch.Tensor, actions: torch.Tensor):
        """Open-loop predictions from ``obs`` (J, S) under ``actions`` (J, H, A).

        Returns predicted states (J, H, S) and rewards (J, H).
        """
        states, rewards = [], []
        for t in range(actions.shape[1]):
            obs, r = self(obs, actions[:, t])
            states.append(obs)
            rewards.append(r)
        return torch.stack(states, 1), torch.stack(rewards, 1)

    def returns(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The planning objective R^(j) = sum_t r_t predicted from ``obs`` (S,)."""
        start = obs.expand(actions.shape[0], -1)
        return self.rollout(start, actions)[1].sum(1)
