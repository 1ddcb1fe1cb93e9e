"""Environments behind one Gymnasium interface.

``make("dmc:cartpole-swingup")``, ``make("gym:CarRacing-v3")`` and ``make("doom:TakeCover")``
return a :class:`gymnasium.Env` whose ``reset(seed=...)`` returns ``(obs, info)`` and whose
``step(a)`` returns ``(obs, reward, terminated, truncated, info)``.

Observations are either pixels, ``uint8`` arrays of shape ``(3, size, size)`` (channels first,
as torch's convolutions want them), or the flat proprioceptive state (``float32``). Actions are
repeated ``action_repeat`` times with the rewards summed (PlaNet's per-task defaults below).
:func:`preprocess` turns pixels into floats in [-0.5, 0.5], with PlaNet's optional 5-bit
quantisation and dequantisation noise.
"""

from __future__ import annotations

import difflib

import gymnasium as gym
import numpy as np
import torch
from PIL import Image

from wmlib.render import ensure_backend

# Action repeat of PlaNet (Hafner et al. 2019, Appendix A): cartpole 8, reacher 4, cheetah 4,
# finger 2, cup 4, walker 2. Other DMC domains use Dreamer's 2; Gym ids use 1.
PLANET_ACTION_REPEAT = {"cartpole": 8, "reacher": 4, "cheetah": 4, "finger": 2, "cup": 4,
                        "walker": 2}
DMC_CAMERA = {"quadruped": 2}  # PlaNet/Dreamer render quadruped from camera 2, the rest from 0


class EnvIdError(ValueError):
    """An environment id that does not exist."""


def dmc_tasks() -> list[str]:
    ensure_backend()
    from dm_control import suite

    return [f"dmc:{d}-{t}" for d, t in suite.ALL_TASKS]


def gym_ids() -> list[str]:
    return [f"gym:{k}" for k in gym.registry if "/" not in k]


def _unknown(env_id: str, known: list[str]) -> EnvIdError:
    close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return EnvIdError(
        f"Unknown environment id {env_id!r}.{hint} Ids look like 'dmc:DOMAIN-TASK', 'gym:ID' "
        "or 'doom:NAME'. "
        f"Known ids: {', '.join(known)}"
    )


class DMCEnv(gym.Env):
    """A dm_control suite task as a Gymnasium environment.

    Each ``step`` repeats the action ``action_repeat`` times and sums the rewards; the pixels
    are rendered once, after the last repeat (rendering is the slow part).
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, domain: str, task: str, pixels: bool = True, size: int = 64,
                 camera: int | None = None, action_repeat: int = 1):
        if action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {action_repeat}")
        ensure_backend()
        from dm_control import suite

        self._env = suite.load(domain, task)
        self.domain, self.task_name, self.pixels, self.size = domain, task, pixels, size
        self.action_repeat = action_repeat
        self.camera = DMC_CAMERA.get(domain, 0) if camera is None else camera
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(spec.minimum.astype(np.float32),
                                           spec.maximum.astype(np.float32), dtype=np.float32)
        if pixels:
            self.observation_space = gym.spaces.Box(0, 255, (3, size, size), dtype=np.uint8)
        else:
            dim = sum(int(np.prod(v.shape)) for v in self._env.observation_spec().values())
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float32)

    @property
    def physics(self):
        """The MuJoCo physics (for the true-simulator planner of chapter 1)."""
        return self._env.physics

    def render(self, size: int | None = None) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 frame, ``size`` pixels square (default: the observation size)."""
        s = size or self.size
        return self._env.physics.render(s, s, camera_id=self.camera)

    def render_state(self, observation, size: int | None = None) -> np.ndarray:
        """Draw cartpole's state observation (x, cos, sin, x', angle'), for instance one a world
        model decoded: set MuJoCo's positions to it and render (this moves the environment's
        state: use an environment that is not mid-episode)."""
        if self.domain != "cartpole" or self.pixels:
            raise ValueError("render_state draws cartpole's state observations; this is "
                             f"{self.domain}-{self.task_name} with pixels={self.pixels}.")
        x, cos, sin, *_ = observation
        physics = self._env.physics
        with physics.reset_context():
            physics.named.data.qpos["slider"] = x
            physics.named.data.qpos["hinge_1"] = np.arctan2(sin, cos)
        return self.render(size)

    def _obs(self, time_step) -> np.ndarray:
        if self.pixels:
            return np.ascontiguousarray(self.render().transpose(2, 0, 1))
        return np.concatenate([np.asarray(v, np.float32).ravel()
                               for v in time_step.observation.values()])

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)
        return self._obs(self._env.reset()), {}

    def step(self, action):
        action = np.asarray(action, np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"{self.domain}-{self.task_name} expects actions of shape "
                             f"{self.action_space.shape}, got {action.shape}.")
        reward = 0.0
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            reward += ts.reward or 0.0
            if ts.last():
                break
        last = ts.last()
        terminated = bool(last and ts.discount == 0)
        return self._obs(ts), float(reward), terminated, bool(last and not terminated), {}


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``k`` times and sum the rewards; stop early at an episode's end."""

    def __init__(self, env: gym.Env, k: int):
        if k < 1:
            raise ValueError(f"action_repeat must be >= 1, got {k}")
        super().__init__(env)
        self.k = k

    def step(self, action):
        total = 0.0
        for _ in range(self.k):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += reward
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class PixelObservation(gym.ObservationWrapper):
    """Crop rows ``crop`` of an ``(H, W, 3)`` image, resize to ``size`` and put channels first.

    For CarRacing, ``crop=(0, 84)`` removes the dashboard as World Models does.
    """

    def __init__(self, env: gym.Env, size: int = 64, crop: tuple[int, int] | None = None,
                 from_render: bool = False):
        super().__init__(env)
        self.size, self.crop, self.from_render = size, crop, from_render
        self.observation_space = gym.spaces.Box(0, 255, (3, size, size), dtype=np.uint8)

    def observation(self, obs):
        frame = self.env.render() if self.from_render else obs
        if self.crop is not None:
            frame = frame[self.crop[0]:self.crop[1]]
        img = Image.fromarray(frame).resize((self.size, self.size), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1))


DOOM_IDS = {"doom:TakeCover": "VizdoomTakeCover-v1"}
DOOM_MAX_STEPS = 2100  # World Models' cap on a Take Cover episode (WorldModelsExperiments)


class DoomTakeCover(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """VizDoom's Take Cover as World Models plays it (Ha & Schmidhuber 2018; the original's
    ``doomrnn/doomreal.py``).

    The agent emits one number a in [-1, 1]: a < -1/3 moves left, a > 1/3 moves right, and
    anything between stays (the original's thresholds). Frames are the 320x240 screen (no HUD
    in this scenario) resized to ``(3, size, size)`` uint8; the reward is +1 per tic survived
    (one tic per step, no frame skip), and an episode ends at death or after 2100 steps.
    """

    THRESHOLD = 1 / 3
    STAY, RIGHT, LEFT = 0, 1, 2  # indices into VizdoomTakeCover-v1's Discrete(3) button map

    def __init__(self, env: gym.Env, size: int = 64):
        gym.utils.RecordConstructorArgs.__init__(self, size=size)
        gym.Wrapper.__init__(self, env)
        self.size = size
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(0, 255, (3, size, size), dtype=np.uint8)

    @classmethod
    def discrete(cls, action) -> int:
        """The button index for a continuous action (stay, right or left)."""
        a = float(np.asarray(action, dtype=np.float32).reshape(-1)[0])
        return cls.LEFT if a < -cls.THRESHOLD else cls.RIGHT if a > cls.THRESHOLD else cls.STAY

    def _frame(self, obs) -> np.ndarray:
        img = Image.fromarray(obs["screen"]).resize((self.size, self.size), Image.BILINEAR)
        return np.ascontiguousarray(np.asarray(img).transpose(2, 0, 1))

    def reset(self, *, seed: int | None = None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._frame(obs), info

    def step(self, action):
        if np.asarray(action).size != 1:
            raise ValueError(f"Take Cover takes one number in [-1, 1] per step, got {action!r}")
        obs, reward, terminated, truncated, info = self.env.step(self.discrete(action))
        return self._frame(obs), float(reward), terminated, truncated, info


def make_doom(env_id: str, size: int = 64) -> gym.Env:
    """``doom:TakeCover``: VizDoom's Take Cover (`DoomTakeCover`), capped at 2100 steps."""
    if env_id not in DOOM_IDS:
        raise _unknown(env_id, list(DOOM_IDS))
    try:
        import vizdoom.gymnasium_wrapper  # noqa: F401  (registers the Vizdoom* ids)
    except ImportError as e:
        raise ImportError(f"{env_id} needs the vizdoom package: pip install 'vizdoom==1.3.2' "
                          "(a wheel for Linux, macOS and Windows; it bundles the game)") from e
    env = gym.make(DOOM_IDS[env_id], render_mode="rgb_array",
                   max_episode_steps=DOOM_MAX_STEPS)
    return DoomTakeCover(env, size=size)


def make(env_id: str, *, pixels: bool = True, size: int = 64, action_repeat: int | None = None,
         camera: int | None = None, seed: int | None = None) -> gym.Env:
    """Make an environment from an id such as ``dmc:cartpole-swingup`` or ``gym:CarRacing-v3``.

    ``action_repeat=None`` takes PlaNet's default for DMC domains (cartpole 8, reacher 4,
    cheetah 4, finger 2, cup 4, walker 2; others 2) and 1 for Gym ids.
    """
    prefix, _, name = env_id.partition(":")
    if prefix == "dmc":
        known = dmc_tasks()
        if env_id not in known:
            raise _unknown(env_id, known)
        domain, task = name.split("-", 1)
        repeat = PLANET_ACTION_REPEAT.get(domain, 2) if action_repeat is None else action_repeat
        env: gym.Env = DMCEnv(domain, task, pixels=pixels, size=size, camera=camera,
                              action_repeat=repeat)
    elif prefix == "gym":
        known = gym_ids()
        if env_id not in known:
            raise _unknown(env_id, known)
        image_obs = "CarRacing" in name
        env = gym.make(name, render_mode="rgb_array" if pixels and not image_obs else None)
        if pixels:
            crop = (0, 84) if "CarRacing" in name else None
            env = PixelObservation(env, size=size, crop=crop, from_render=not image_obs)
        if action_repeat is not None and action_repeat > 1:
            env = ActionRepeat(env, action_repeat)
    elif prefix == "doom":
        if not pixels:
            raise ValueError(f"{env_id} has only pixel observations: use pixels=True")
        env = make_doom(env_id, size=size)
        if action_repeat is not None and action_repeat > 1:
            env = ActionRepeat(env, action_repeat)
    else:
        raise EnvIdError(f"Unknown environment id {env_id!r}: it must start with 'dmc:', "
                         "'gym:' or 'doom:', e.g. 'dmc:cartpole-swingup', 'gym:CarRacing-v3' "
                         "or 'doom:TakeCover'.")
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def preprocess(obs, bits: int = 8, noise: bool = False) -> torch.Tensor:
    """uint8 pixels -> floats in [-0.5, 0.5] (PlaNet's ``preprocess_observation_``).

    With ``bits < 8`` the image is quantised to ``bits`` bits (PlaNet uses 5); ``noise`` adds
    uniform dequantisation noise of one quantisation bin.
    """
    x = torch.as_tensor(obs)
    if x.dtype != torch.uint8:
        raise TypeError(f"preprocess expects uint8 pixels (0..255), got {x.dtype}; "
                        "pass the observation as the environment returned it.")
    bins = 2 ** bits
    if bits < 8:
        x = x >> (8 - bits)  # floor(x / 2^(8 - bits)), in uint8: one byte per pixel
    x = x.float().mul_(1 / bins).sub_(0.5)  # in place: no further copies of the batch
    if noise:
        x.add_(torch.rand_like(x), alpha=1 / bins)
    return x


def postprocess(x: torch.Tensor) -> np.ndarray:
    """Floats in [-0.5, 0.5] -> uint8 pixels (for plots and videos)."""
    return (x.detach().float().add(0.5).clamp(0, 1).mul(255).round()).to(torch.uint8).cpu().numpy()
