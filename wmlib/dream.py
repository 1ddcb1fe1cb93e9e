"""The dream: M (the MDN-RNN) as an environment, so that C can be trained inside it.

World Models (Ha & Schmidhuber 2018, arXiv:1803.10122, section "Learning inside of a dream")
replaces the real environment by its model: the state is (z_t, h_t); an action a_t advances the
LSTM, the next code is sampled from the mixture, z_{t+1} ~ P(z | a_t, z_t, h_t) at temperature
tau, the reward and the end of the episode come from M's reward and done heads. A higher tau
makes the dream more uncertain, so that a controller cannot exploit the model's mistakes as
easily.

- :class:`DreamEnv`: one dream as a Gymnasium environment (``reset``/``step``/``render``),
  observation ``[z_t, h_t]``;
- :func:`dream_returns`: the same dream for a whole CMA-ES population at once, one batch on
  the device (what training uses; it agrees with :class:`DreamEnv` step for step).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from wmlib.models.controller import CAR_RACING_HIGH, CAR_RACING_LOW
from wmlib.models.mdnrnn import MDNRNN, MDNParams


def sample_mixture(params: MDNParams, temperature: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z ~ sum_k pi_k(tau) N(mu_k, sigma_k^2 tau) per latent dimension, with a generator.

    pi(tau) = softmax(logits / tau); at tau = 0 the mean of the most likely component (as
    :meth:`MDNRNN.sample`, which uses the global generator).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        k = params.logits.argmax(-1, keepdim=True)
        return params.mean.gather(-1, k).squeeze(-1)
    probs = torch.softmax(params.logits / temperature, -1)
    flat = probs.reshape(-1, probs.shape[-1])
    k = torch.multinomial(flat, 1, generator=generator).reshape(*probs.shape[:-1], 1)
    mean = params.mean.gather(-1, k).squeeze(-1)
    std = params.log_std.gather(-1, k).squeeze(-1).exp() * temperature**0.5
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * eps


def _squash(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor,
            brake_clip: bool) -> torch.Tensor:
    """tanh output in [-1, 1] -> the action box, as :class:`wmlib.models.controller.Controller`."""
    y = torch.tanh(x)
    out = low + (y + 1) / 2 * (high - low)
    if brake_clip:
        out = torch.cat([out[..., :2], y[..., 2:].clamp(0, 1)], -1)
    return out


class DreamEnv(gym.Env):
    """M as a Gymnasium environment.

    ``reset`` draws z_0 from ``initial_z`` (codes of real first frames) and sets h_0 = 0;
    ``step(a)`` returns the observation ``[z_{t+1}, h_{t+1}]`` (float32), the reward predicted
    by M's reward head (``reward="survival"``: 1 for every step survived, the fatal one
    included, as the original Take Cover dream), ``terminated`` when the done head's
    probability exceeds
    ``done_threshold``, and ``truncated`` after ``max_steps`` steps. With a ``vae``,
    ``render()`` decodes z_t to a (64, 64, 3) uint8 frame.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, mdnrnn: MDNRNN, initial_z, temperature: float = 1.0,
                 max_steps: int = 1000, done_threshold: float = 0.5, vae=None,
                 action_low=CAR_RACING_LOW, action_high=CAR_RACING_HIGH,
                 render_mode: str | None = "rgb_array", reward: str = "model"):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        _check_reward(reward, mdnrnn)
        self.reward_kind = reward
        z0 = torch.as_tensor(np.asarray(initial_z), dtype=torch.float32)
        if z0.ndim != 2 or z0.shape[1] != mdnrnn.latent_dim:
            raise ValueError(f"initial_z must have shape (N, {mdnrnn.latent_dim}), got "
                             f"{tuple(z0.shape)}")
        self.m, self.vae, self.temperature = mdnrnn.eval(), vae, temperature
        self.max_steps, self.done_threshold = max_steps, done_threshold
        self.render_mode = render_mode
        self.device = mdnrnn.mdn.weight.device
        self.initial_z = z0.to(self.device)
        dim = mdnrnn.latent_dim + mdnrnn.hidden
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)
        self.action_space = gym.spaces.Box(np.asarray(action_low, np.float32),
                                           np.asarray(action_high, np.float32), dtype=np.float32)
        self._gen = torch.Generator(device=self.device)
        self._z = self._state = None
        self._t = 0

    def _obs(self) -> np.ndarray:
        return torch.cat([self._z, self._state[0]], -1)[0].cpu().numpy().astype(np.float32)

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self._gen.manual_seed(int(self.np_random.integers(2**62)))
        i = int(self.np_random.integers(len(self.initial_z)))
        self._z = self.initial_z[i : i + 1].clone()
        self._state = self.m.initial_state(1)
        self._t = 0
        return self._obs(), {}

    @torch.no_grad()
    def step(self, action):
        if self._z is None:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(action, np.float32)
        if a.shape != self.action_space.shape:
            raise ValueError(f"the dream expects actions of shape {self.action_space.shape}, "
                             f"got {a.shape}")
        a = torch.as_tensor(a, device=self.device)[None]
        params, self._state = self.m.step(self._z, a, self._state)
        self._z = sample_mixture(params, self.temperature, self._gen)
        self._t += 1
        reward = 1.0 if self.reward_kind == "survival" else float(params.reward[0])
        p_done = 0.0 if params.done is None else float(torch.sigmoid(params.done[0]))
        terminated = p_done > self.done_threshold
        truncated = self._t >= self.max_steps and not terminated
        return self._obs(), reward, terminated, truncated, {"p_done": p_done}

    @torch.no_grad()
    def render(self):
        if self.vae is None:
            raise ValueError("pass vae= to DreamEnv to render the dream")
        if self._z is None:
            raise RuntimeError("call reset() before render()")
        from wmlib.envs import postprocess

        return postprocess(self.vae.decode(self._z)[0]).transpose(1, 2, 0)


@torch.no_grad()
def dream_returns(mdnrnn: MDNRNN, params: np.ndarray | None, initial_z: torch.Tensor,
                  use_hidden: bool = True, temperature: float = 1.0, steps: int = 1000,
                  done_threshold: float = 0.5, generator: torch.Generator | None = None,
                  low=CAR_RACING_LOW, high=CAR_RACING_HIGH, brake_clip: bool = True,
                  reward: str = "model") -> np.ndarray:
    """Returns in the dream of P linear controllers (rows of ``params``), one dream per row of
    ``initial_z`` each: an array (P, R), computed as one batch of P * R dreams.

    Each controller is a = squash(W [z, h] + b) with the layout of
    :meth:`Controller.get_params` (``[vec(W), b]``); ``params=None`` draws every action
    uniformly from the box instead (the random policy of the real evaluation; one row). A
    dream stops collecting reward once its done head says so. ``reward="model"`` pays M's
    predicted reward, ``"survival"`` 1 per step (the Take Cover dream: the return is the
    number of steps survived).
    """
    _check_reward(reward, mdnrnn)
    m = mdnrnn.eval()
    dev = m.mdn.weight.device
    z0 = torch.as_tensor(initial_z, dtype=torch.float32, device=dev)
    lo = torch.as_tensor(low, dtype=torch.float32, device=dev)
    hi = torch.as_tensor(high, dtype=torch.float32, device=dev)
    R, A = z0.shape[0], len(low)
    if params is None:
        P = 1
    else:
        params = torch.as_tensor(np.asarray(params), dtype=torch.float32, device=dev)
        P = params.shape[0]
        in_dim = m.latent_dim + (m.hidden if use_hidden else 0)
        if params.shape[1] != A * in_dim + A:
            raise ValueError(f"expected controllers with {A * in_dim + A} parameters, got "
                             f"{params.shape[1]}")
        W = params[:, : A * in_dim].reshape(P, A, in_dim).repeat_interleave(R, 0)
        b = params[:, A * in_dim :].repeat_interleave(R, 0)
    z = z0.repeat(P, 1)
    state = m.initial_state(P * R)
    alive = torch.ones(P * R, device=dev)
    total = torch.zeros(P * R, device=dev)
    for _ in range(steps):
        if params is None:
            a = lo + (hi - lo) * torch.rand((R, A), generator=generator, device=dev)
        else:
            x = torch.cat([z, state[0]], -1) if use_hidden else z
            a = _squash(torch.einsum("bai,bi->ba", W, x) + b, lo, hi, brake_clip)
        out, state = m.step(z, a, state)
        total += alive * (1.0 if reward == "survival" else out.reward)
        if out.done is not None:
            alive = alive * (torch.sigmoid(out.done) <= done_threshold).float()
        if not alive.any():
            break
        z = sample_mixture(out, temperature, generator)
    return total.reshape(P, R).cpu().numpy()


def _check_reward(reward: str, mdnrnn: MDNRNN) -> None:
    if reward not in ("model", "survival"):
        raise ValueError(f"reward must be 'model' (M's reward head) or 'survival' (1 per step), "
                         f"got {reward!r}")
    if reward == "model" and mdnrnn.reward is None:
        raise ValueError("reward='model' needs an MDNRNN with a reward head (reward_head=True); "
                         "use reward='survival' for a dream that pays 1 per step survived")
