"""The game and the agent that plays it: the environment as World Models sees it
(`make_env`, with a faster CarRacing renderer), V, M and C built from a configuration, the
policy V + M + C (`WorldModelsPolicy`), the random policies of the data, one episode
(`run_policy`), and episodes of the real game in worker processes (stages 1, 5 and 6)."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import torch

from wmlib import devices, envs
from wmlib.agents.world_models.config import WorldModelsConfig
from wmlib.models.controller import Controller
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import VAE


def _fast_render_road(self, zoom, translation, angle):
    """CarRacing's ``_render_road`` with the polygons rotated by numpy in one go.

    Gymnasium rotates ~800 polygons point by point in Python at every step; here they are
    transformed as one array and only those on screen are drawn, with the same pygame calls in
    the same order. Rewards and physics are untouched; frames agree up to the rounding of
    anti-aliased edges (a few levels on a few percent of the pixels at most).
    """
    from gymnasium.envs.box2d import car_racing as cr
    from pygame import gfxdraw

    if getattr(self, "_wm_road_key", None) != id(self.road_poly):
        b, G = cr.PLAYFIELD, cr.GRASS_DIM
        polys = [[(b, b), (b, -b), (-b, -b), (-b, b)]]
        colors = [tuple(int(c) for c in self.bg_color)]
        for x in range(-20, 20, 2):
            for y in range(-20, 20, 2):
                polys.append([(G * x + G, G * y), (G * x, G * y), (G * x, G * y + G),
                              (G * x + G, G * y + G)])
                colors.append(tuple(int(c) for c in self.grass_color))
        for poly, color in self.road_poly:
            polys.append([(p[0], p[1]) for p in poly])
            colors.append(tuple(int(c) for c in color))
        self._wm_polys, self._wm_colors = np.asarray(polys, np.float64), colors
        self._wm_road_key = id(self.road_poly)
    a = math.fmod(angle, 2 * math.pi)
    a = a + 2 * math.pi if a < 0 else a
    c, s = math.cos(a), math.sin(a)
    p = self._wm_polys
    x = (p[..., 0] * c - p[..., 1] * s) * zoom + translation[0]
    y = (p[..., 0] * s + p[..., 1] * c) * zoom + translation[1]
    m = cr.MAX_SHAPE_DIM
    visible = ((x >= -m) & (x <= cr.WINDOW_W + m) & (y >= -m) & (y <= cr.WINDOW_H + m)).any(1)
    visible[0] = True  # the background is drawn unclipped
    for i in np.flatnonzero(visible):
        poly = list(zip(x[i].tolist(), y[i].tolist()))
        gfxdraw.aapolygon(self.surf, poly, self._wm_colors[i])
        gfxdraw.filled_polygon(self.surf, poly, self._wm_colors[i])


def speed_up_car_racing(env):
    """Make CarRacing's rendering about twice as fast (see :func:`_fast_render_road`)."""
    import types

    inner = env.unwrapped
    if not hasattr(inner, "_render_road") or not hasattr(inner, "grass_color"):
        raise ValueError(f"speed_up_car_racing needs a CarRacing environment, got {inner}")
    inner._render_road = types.MethodType(_fast_render_road, inner)
    return env


def make_env(cfg: WorldModelsConfig):
    """The game with frames as World Models prepares them, (3, 64, 64) uint8: CarRacing
    without its dashboard, or Take Cover (`wmlib.envs.DoomTakeCover`)."""
    env = envs.make(cfg.env_id)
    return speed_up_car_racing(env) if cfg.fast_render and "CarRacing" in cfg.env_id else env


def make_vae(cfg: WorldModelsConfig) -> VAE:
    return VAE(cfg.latent_dim, cfg.vae_depth, cfg.kl_tolerance)


def make_mdnrnn(cfg: WorldModelsConfig) -> MDNRNN:
    return MDNRNN(cfg.latent_dim, len(cfg.action_low), cfg.hidden, cfg.mixtures,
                  reward_head=True, done_head=True)


def make_controller(cfg: WorldModelsConfig, use_hidden: bool = True) -> Controller:
    return Controller(cfg.latent_dim, cfg.hidden, len(cfg.action_low), use_hidden=use_hidden,
                      low=cfg.action_low, high=cfg.action_high, brake_clip=cfg.brake_clip)


class WorldModelsPolicy:
    """obs -> action with V, M and C (the paper's Figure "flow diagram"):

        z_t ~ N(mu(o_t), sigma(o_t)^2)  (a sample, as the original; ``sample_z=False``: mu),
        a_t = C([z_t, h_t]),  h_{t+1} = M's LSTM after reading (z_t, a_t).

    The original samples z at every step (WorldModelsExperiments' ``model.py``): M was trained
    on sampled z, and the dream feeds M's sampled z to C, so C meets the same noise in reality.
    The noise is drawn from a generator that `seed` sets (`run_policy` seeds it with the
    episode's seed, so an episode replays exactly).

    Call :meth:`reset` at the start of every episode. ``trace`` keeps the z and h seen. V and
    M run on the device of their parameters (the CPU in CMA-ES's worker processes).
    """

    def __init__(self, vae: VAE, mdnrnn: MDNRNN, controller: Controller, trace: bool = False,
                 sample_z: bool = True):
        self.vae, self.m, self.c = vae.eval(), mdnrnn.eval(), controller
        self.trace, self.sample_z = trace, sample_z
        self.seed(0)
        self.reset()

    def seed(self, seed: int) -> None:
        """Seed the noise of the sampled z."""
        self.generator = devices.generator(self.vae.mu.weight.device, seed)

    def reset(self) -> None:
        self.state = self.m.initial_state(1)
        self.zs: list[np.ndarray] = []
        self.hs: list[np.ndarray] = []

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        dev = self.vae.mu.weight.device
        q = self.vae.encode(envs.preprocess(devices.to_device(obs, dev))[None])
        z = q.loc
        if self.sample_z:
            z = z + q.scale * torch.randn(z.shape, device=dev, generator=self.generator)
        h = self.state[0]
        action = self.c(z[0], h[0]).astype(np.float32)
        if self.trace:
            self.zs.append(z[0].cpu().numpy())
            self.hs.append(h[0].cpu().numpy())
        _, self.state = self.m.step(z, torch.as_tensor(action, device=dev)[None], self.state)
        return action


class OriginalRandomPolicy(WorldModelsPolicy):
    """The random policy of the original data collection (``extract.py`` of
    WorldModelsExperiments): untrained V and M, and C's parameters drawn as Cauchy noise of
    scale s ~ U(0, 0.01) for each rollout, so that most rollouts drive roughly straight at half
    gas and a few, with a large weight, turn, brake or wobble."""

    def __init__(self, cfg: WorldModelsConfig, rng: np.random.Generator):
        torch.manual_seed(int(rng.integers(2**31)))
        c = make_controller(cfg, use_hidden=True)
        c.set_params(rng.standard_cauchy(c.num_params) * rng.uniform(0, 0.01))
        super().__init__(make_vae(cfg), make_mdnrnn(cfg), c)


class RepeatedRandomPolicy:
    """The random policy of the original Doom data collection (``doomrnn/extract.py``): an
    action drawn uniformly from [low, high), held for a number of steps drawn uniformly from
    1 to 10, then drawn again."""

    def __init__(self, cfg: WorldModelsConfig, rng: np.random.Generator):
        self.rng, self.low, self.high = rng, np.asarray(cfg.action_low), np.asarray(
            cfg.action_high)
        self.reset()

    def reset(self) -> None:
        self.action, self.left = None, 0

    def __call__(self, obs) -> np.ndarray:
        if self.left == 0:
            self.action = self.rng.uniform(self.low, self.high).astype(np.float32)
            self.left = int(self.rng.integers(1, 11))
        self.left -= 1
        return self.action


def random_data_policy(cfg: WorldModelsConfig, rng: np.random.Generator):
    """The data-collection policy ``cfg.random_policy`` names."""
    if cfg.random_policy == "cauchy":
        return OriginalRandomPolicy(cfg, rng)
    if cfg.random_policy == "repeat":
        return RepeatedRandomPolicy(cfg, rng)
    raise ValueError(f"random_policy must be 'cauchy' or 'repeat', got {cfg.random_policy!r}")


def run_policy(env, policy, seed: int, max_steps: int | None = None,
               patience: int | None = None, frames: bool = False) -> dict:
    """One episode of ``policy`` (a :class:`WorldModelsPolicy`, or any obs -> action callable
    with an optional ``reset``). Stops at the end of the episode, after ``max_steps`` steps, or
    after ``patience`` steps in a row without a positive reward (a new tile).

    Returns ``return``, ``steps`` and, with ``frames=True``, the episode in replay alignment:
    ``obs`` (T+1 frames), ``action`` and ``reward`` (entry t led to / came with ``obs[t]``).
    A thin wrapper of `wmlib.rollout.run_episode`.
    """
    from wmlib.rollout import run_episode

    if hasattr(policy, "reset"):
        policy.reset()
    if hasattr(policy, "seed"):
        policy.seed(seed)
    env.action_space.seed(seed)
    since_tile = 0

    def no_new_tile(reward: float) -> bool:
        nonlocal since_tile
        since_tile = 0 if reward > 0 else since_tile + 1
        return bool(patience) and since_tile >= patience

    episode, info = run_episode(env, policy, seed=seed, max_steps=max_steps, stop=no_new_tile,
                                keep_obs=frames)
    out = {"return": info["return"], "steps": info["steps"], "terminated": info["terminated"]}
    if frames:
        out.update(episode)
    return out


_WORKER: dict = {}


def _one_thread_in_workers() -> None:
    """Worker processes run one torch thread each (the processes are the parallelism)."""
    import multiprocessing as mp

    if mp.current_process().name != "MainProcess":
        torch.set_num_threads(1)


def _init_real_worker(cfg_dict: dict, vae_state: dict, rnn_state: dict, use_hidden: bool,
                      max_steps: int | None, patience: int | None) -> None:
    _one_thread_in_workers()
    cfg = WorldModelsConfig(**cfg_dict)
    vae, m = make_vae(cfg), make_mdnrnn(cfg)
    vae.load_state_dict(vae_state)
    m.load_state_dict(rnn_state)
    c = make_controller(cfg, use_hidden)
    _WORKER.update(cfg=cfg, env=make_env(cfg), policy=WorldModelsPolicy(vae, m, c),
                   max_steps=max_steps, patience=patience)


def _real_fitness(params: np.ndarray | None, seed: int) -> float:
    """The return of one episode of C(params) on track ``seed`` (uniform random actions when
    ``params`` is None)."""
    w = _WORKER
    if params is None:
        env = w["env"]
        policy = lambda obs: env.action_space.sample()  # noqa: E731
    else:
        policy = w["policy"]
        policy.c.set_params(params)
    return run_policy(w["env"], policy, seed, w["max_steps"], w["patience"])["return"]


def _cpu_state(module: torch.nn.Module) -> dict:
    """A module's state dict on the CPU, for worker processes (which run on the CPU)."""
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _worker_args(cfg, vae, m, use_hidden, max_steps, patience) -> tuple:
    return (asdict(cfg), _cpu_state(vae), _cpu_state(m), use_hidden, max_steps, patience)
