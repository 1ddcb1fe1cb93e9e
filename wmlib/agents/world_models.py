"""Chapter 2's agent: World Models (Ha & Schmidhuber 2018) on CarRacing, V + M + C (and, with
the settings of :mod:`wmlib.agents.world_models_doom`, on VizDoom's Take Cover).

The training procedure of the paper (Ha and Schmidhuber 2018, arXiv:1803.10122, its CarRacing
experiment; the CarRacing table also appears in J. Vitay's lecture "Planning with learned world
models", TU Chemnitz):

1. collect random rollouts (:func:`collect_rollouts`), with the original's random policy: an
   untrained V and M and a controller whose parameters are Cauchy noise of scale U(0, 0.01);
2. train V, the VAE, on the frames (:func:`train_vae`);
3. encode every frame to (mu, log sigma^2) (:func:`encode_dataset`);
4. train M, the MDN-RNN, on the encoded sequences and the actions (:func:`train_mdnrnn`);
5. evolve C with CMA-ES, in the real environment (:func:`train_controller` with
   ``where="real"``) or inside M's dream (``where="dream"``);
6. evaluate C on N random tracks, full-length episodes (:func:`evaluate_controller`).

Each stage writes its output under one run directory (``runs/ch02_<profile>`` by default) and
a rerun resumes from what exists: rollout files already written are skipped, V, M and the
CMA-ES searches continue from their checkpoints, finished evaluations are read back.
:func:`run` chains them and writes ``results/ch02_world_models_<profile>.json``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from wmlib import devices, envs
from wmlib.evolution import Evaluator, cmaes
from wmlib.models.controller import CAR_RACING_HIGH, CAR_RACING_LOW, Controller
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.vae import VAE
from wmlib.progress import tqdm
from wmlib.training import History, scalars, train_loop

DATA_SEED = 2_000_000  # track seeds of the random rollouts
EVAL_SEED = 1_000_000  # track seeds of the final evaluation (disjoint from training seeds)
SELECT_SEED = 3_000_000  # tracks used to choose between the CMA-ES mean and its best sample


@dataclass(frozen=True)
class WorldModelsConfig:
    env_id: str = "gym:CarRacing-v3"
    # The game's interface: CarRacing's by default; `wmlib.agents.world_models_doom` sets
    # Take Cover's (one action in [-1, 1], no rewards to learn, deaths to predict).
    action_low: tuple = CAR_RACING_LOW
    action_high: tuple = CAR_RACING_HIGH
    brake_clip: bool = True           # CarRacing's mapping of C's third output onto the brake
    random_policy: str = "cauchy"     # data: "cauchy" (CarRacing's original random controller)
                                      # or "repeat" (Doom's: a uniform action held 1-10 steps)
    done_weight: float = 1.0          # weight of episode ends in M's done loss (Doom: 10)
    rnn_streams: bool = False         # M's windows run on across rollouts (Doom's batching)
    rnn_stateful: bool = False        # ... and each window continues the last one, M's LSTM
                                      # state carried over (the original Doom training)
    dream_reward: str = "model"       # "model": M's reward head; "survival": 1 per step
    fast_render: bool = True          # vectorised road drawing (see speed_up_car_racing)
    workers: int = 2                  # processes for rollouts, CMA-ES and evaluation
    torch_threads: int | None = None  # torch threads of the main process (None: torch's
                                      # default; 1 on a small shared CPU, where more spin)
    # 1. random rollouts (paper: 10,000 rollouts of up to 1000 steps)
    rollouts: int = 10_000
    rollout_steps: int = 1000
    # 2. V (paper: z = 32, four stride-2 convolutions of 32..256 channels, KL tolerance 0.5,
    #    batch 100, learning rate 1e-4, 10 epochs)
    latent_dim: int = 32
    vae_depth: int = 32
    kl_tolerance: float = 0.5
    vae_batch: int = 100
    vae_lr: float = 1e-4
    vae_epochs: float = 10.0
    vae_buffer_frames: int = 500_000  # frames held in memory at once (refreshed from disk)
    bf16: bool = False                # bfloat16 autocast for V on the CPU
    # 4. M (paper: LSTM 256, 5 mixtures, sequences of 1000 steps, batch 100, lr 1e-3,
    #    gradient clip 1.0, 4000 steps)
    hidden: int = 256
    mixtures: int = 5
    rnn_seq_len: int = 999
    rnn_batch: int = 100
    rnn_lr: float = 1e-3
    rnn_steps: int = 4000
    rnn_grad_clip: float = 1.0
    # 5. C with CMA-ES (paper: population 64, 16 rollouts per candidate, sigma 0.1,
    #    ~1800 generations, full episodes)
    popsize: int = 64
    rollouts_per_candidate: int = 16
    sigma0: float = 0.1
    es_weight_decay: float = 0.01   # the original es.py's L2 penalty on C's weights
    generations: int = 1800
    train_max_steps: int | None = None  # cut training episodes short (evaluation never is)
    patience: int | None = None         # end a training episode after this many steps without
                                        # a new tile (off the track); None: never
    select_rollouts: int = 0            # tracks to choose between the CMA-ES mean and best
                                        # sample (0: take the mean)
    zonly_generations: int = 1800       # the V-only ablation (C reads z alone)
    # 5'. C inside the dream
    dream_temperature: float = 1.15
    dream_popsize: int = 64
    dream_rollouts: int = 16
    dream_generations: int = 300
    dream_steps: int = 1000
    # 6. evaluation (paper: 100 random tracks)
    eval_episodes: int = 100
    eval_max_steps: int | None = None   # only the smoke profile cuts evaluation episodes
    # the chapter's small demonstrations
    demo_steps: int = 300               # training steps of the toy mixture-versus-Gaussian demo
    video_steps: int = 1000             # steps of the video of the trained controller
    seed: int = 0


CONFIGS = {
    "smoke": WorldModelsConfig(
        workers=1, torch_threads=1, rollouts=2, rollout_steps=20, vae_depth=8, latent_dim=8,
        vae_batch=8, vae_lr=1e-3, vae_epochs=1, hidden=16, mixtures=2, rnn_seq_len=8,
        rnn_batch=4, rnn_steps=5, popsize=4, rollouts_per_candidate=1, generations=2,
        train_max_steps=10, patience=None, zonly_generations=1, dream_popsize=4,
        dream_rollouts=2, dream_generations=2, dream_steps=10, eval_episodes=1,
        eval_max_steps=10, demo_steps=20, video_steps=10),
    "quick": WorldModelsConfig(
        torch_threads=1, rollouts=40, rollout_steps=300, vae_batch=64, vae_lr=1e-3,
        vae_epochs=3, bf16=True, rnn_seq_len=100, rnn_batch=32, rnn_steps=600, popsize=16,
        rollouts_per_candidate=1, generations=18, train_max_steps=300, patience=60,
        zonly_generations=12, dream_popsize=32, dream_rollouts=8, dream_generations=40,
        dream_steps=300, eval_episodes=10, video_steps=400),
    # One Colab session (2 CPU cores and a T4-class GPU): V and M train on the GPU, bigger than
    # quick; the rollouts and CMA-ES in the real environment stay on the 2 CPU cores (the
    # environment is the cost there), while the dream, batched on the GPU, gets the paper's
    # population and rollouts. About 45-55 minutes, an estimate from the quick run's stage
    # times until it is measured on a GPU.
    "gpu": WorldModelsConfig(
        torch_threads=1, rollouts=100, rollout_steps=500, vae_batch=100, vae_lr=1e-3,
        vae_epochs=5, bf16=True, rnn_seq_len=200, rnn_batch=64, rnn_steps=2000, popsize=16,
        rollouts_per_candidate=1, generations=20, train_max_steps=300, patience=60,
        zonly_generations=12, dream_popsize=64, dream_rollouts=16, dream_generations=100,
        dream_steps=500, eval_episodes=10, video_steps=400),
    "full": WorldModelsConfig(),
}


# ----- the environment ---------------------------------------------------------------------


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


# ----- V, M, C and the policy ----------------------------------------------------------------


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


# ----- run directory, log, timings --------------------------------------------------------


def default_run_dir(profile: str) -> Path:
    """``runs/ch02_<profile>`` under the book's home directory (`wmlib.paths`)."""
    from wmlib.paths import runs_dir

    return runs_dir(f"ch02_{profile}")


class Run:
    """A run directory: the config, a log file, and the wall time of each stage."""

    def __init__(self, cfg: WorldModelsConfig, run_dir: str | Path, verbose: bool = False):
        self.cfg, self.dir, self.verbose = cfg, Path(run_dir), verbose
        self.dir.mkdir(parents=True, exist_ok=True)
        saved = self.dir / "config.json"
        if saved.exists():
            old, now = json.loads(saved.read_text()), json.loads(json.dumps(asdict(cfg)))
            if old != now:
                diff = {k: (old.get(k), v) for k, v in now.items() if old.get(k) != v}
                raise ValueError(f"{self.dir} holds a run with another configuration "
                                 f"(saved, now): {diff}. Use another run directory.")
        else:
            saved.write_text(json.dumps(asdict(cfg), indent=1))

    def log(self, line: str) -> None:
        with open(self.dir / "log.txt", "a") as f:
            f.write(line + "\n")
        if self.verbose:
            print(line)

    @property
    def timings(self) -> dict:
        path = self.dir / "timings.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def add_time(self, stage: str, seconds: float) -> None:
        t = self.timings
        t[stage] = round(t.get(stage, 0.0) + seconds, 1)
        (self.dir / "timings.json").write_text(json.dumps(t, indent=1))


def _as_run(cfg, run_dir) -> Run:
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    return run_dir if isinstance(run_dir, Run) else Run(cfg, run_dir)


# ----- 1. random rollouts ---------------------------------------------------------------------

_WORKER: dict = {}


def _one_thread_in_workers() -> None:
    """Worker processes run one torch thread each (the processes are the parallelism)."""
    import multiprocessing as mp

    if mp.current_process().name != "MainProcess":
        torch.set_num_threads(1)


def _init_collect_worker(cfg_dict: dict) -> None:
    _one_thread_in_workers()
    cfg = WorldModelsConfig(**cfg_dict)
    _WORKER.update(cfg=cfg, env=make_env(cfg))


def _collect_one(index: int, path: str) -> int:
    cfg, env = _WORKER["cfg"], _WORKER["env"]
    seed = DATA_SEED + cfg.seed * 100_000 + index  # seed 0: the tracks of the committed runs
    policy = random_data_policy(cfg, np.random.default_rng(seed))
    ep = run_policy(env, policy, seed=seed, max_steps=cfg.rollout_steps, frames=True)
    done = np.zeros(ep["steps"] + 1, bool)
    done[-1] = ep["terminated"]
    tmp = Path(path + ".tmp.npz")
    np.savez_compressed(tmp, obs=ep["obs"], action=ep["action"], reward=ep["reward"], done=done)
    tmp.replace(path)
    return ep["steps"]


def collect_rollouts(cfg: WorldModelsConfig, run_dir, progress: bool = True) -> list[Path]:
    """Stage 1: ``cfg.rollouts`` random rollouts saved to ``run_dir/rollouts/*.npz`` (obs as
    uint8 (T+1, 3, 64, 64), action, reward, done, aligned as :mod:`wmlib.replay`). Rollouts
    already on disk are kept."""
    run = _as_run(cfg, run_dir)
    folder = run.dir / "rollouts"
    folder.mkdir(exist_ok=True)
    paths = [folder / f"rollout_{i:05d}.npz" for i in range(cfg.rollouts)]
    todo = [(i, str(p)) for i, p in enumerate(paths) if not p.exists()]
    if todo:
        start = time.time()
        steps = 0
        bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="random rollouts",
                   disable=not progress)
        with Evaluator(_collect_one, cfg.workers, _init_collect_worker, (asdict(cfg),)) as ev:
            chunk = max(cfg.workers, 1) * 2
            for k in range(0, len(todo), chunk):
                steps += sum(ev.map(todo[k : k + chunk]))
                bar.update(len(todo[k : k + chunk]))
        bar.close()
        seconds = time.time() - start
        run.add_time("rollouts", seconds)
        run.log(f"rollouts: {len(todo)} new, {steps} steps in {seconds:.0f} s "
                f"({steps / seconds:.0f} steps/s with {cfg.workers} workers)")
    return paths


def load_rollout(path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


# ----- 2. V -----------------------------------------------------------------------------


def _added_options(cfg: WorldModelsConfig, keys: tuple[str, ...]) -> dict:
    """Options added after chapter 2's CarRacing runs were saved enter a stage's fingerprint
    only where they differ from their defaults, so that those runs still load."""
    default = WorldModelsConfig()
    return {k: getattr(cfg, k) for k in keys if getattr(cfg, k) != getattr(default, k)}


def _vae_config(cfg: WorldModelsConfig) -> dict:
    keys = ("rollouts", "rollout_steps", "latent_dim", "vae_depth", "kl_tolerance", "vae_batch",
            "vae_lr", "vae_epochs", "bf16", "seed")
    return {k: getattr(cfg, k) for k in keys} | _added_options(cfg, ("env_id", "random_policy"))


def _count_frames(paths) -> int:
    n = 0
    for p in paths:
        with np.load(p) as f:
            n += len(f["action"])
    return n


def train_vae(cfg: WorldModelsConfig, run_dir, progress: bool = True,
              device=None) -> tuple[VAE, History]:
    """Stage 2: train V on random frames of the rollouts for ``cfg.vae_epochs`` epochs on
    ``device`` (default: the session's; checkpoint in ``run_dir/vae``; a rerun resumes). With
    ``cfg.bf16`` the convolutions run under bfloat16 autocast (about 1.3x faster on recent
    CPUs; the loss stays float32). Frames stay uint8 in memory and go to the device as bytes."""
    run = _as_run(cfg, run_dir)
    paths = sorted((run.dir / "rollouts").glob("rollout_*.npz"))
    if not paths:
        raise FileNotFoundError(f"no rollouts in {run.dir / 'rollouts'}: run collect_rollouts")
    total_frames = _count_frames(paths)
    total = max(1, int(cfg.vae_epochs * total_frames / cfg.vae_batch))
    dev = devices.resolve(device)
    vae = make_vae(cfg).to(dev)
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.vae_lr)
    rng = np.random.default_rng(cfg.seed)
    buffer: dict = {"frames": None, "used": 0}

    def refill():
        order = rng.permutation(len(paths))
        frames, n = [], 0
        for i in order:
            obs = load_rollout(paths[i])["obs"]
            frames.append(obs)
            n += len(obs)
            if n >= cfg.vae_buffer_frames:
                break
        buffer["frames"] = torch.from_numpy(np.concatenate(frames))
        buffer["used"] = 0

    def update(step):
        if buffer["frames"] is None or buffer["used"] >= len(buffer["frames"]) * 2:
            refill()
        idx = torch.from_numpy(rng.integers(0, len(buffer["frames"]), cfg.vae_batch))
        x = envs.preprocess(devices.to_device(buffer["frames"][idx], dev))
        buffer["used"] += cfg.vae_batch
        with devices.autocast(dev, cfg.bf16):
            out = vae.loss(x)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        return scalars(out)

    history = _train_stage(
        run, "vae", update, total, _vae_config(cfg), {"vae": vae, "optim": opt}, "V (VAE)",
        progress, lambda h, s: (f"V: {total} steps of batch {cfg.vae_batch} on {total_frames} "
                                f"frames, {s:.0f} s, last loss {h.last('loss'):.1f} (recon "
                                f"{h.last('recon'):.1f}, kl {h.last('kl'):.1f})"))
    return vae.eval(), history


def _train_stage(run, name: str, update, total: int, config: dict, modules: dict, desc: str,
                 progress: bool, summary) -> History:
    """A resumable stage through `train_loop` (checkpoint in ``run.dir / name``), timed and
    logged with ``summary(history, seconds)`` unless it only reloaded a finished stage."""
    start = time.time()
    history = train_loop(update, total, config=config, modules=modules, run_dir=run.dir / name,
                         save_every=max(50, total // 10), desc=desc, progress=progress)
    seconds = time.time() - start
    if seconds > 5:
        run.add_time(name, seconds)
        run.log(summary(history, seconds))
    return history


def load_vae(cfg: WorldModelsConfig, run_dir, device=None) -> VAE:
    from wmlib.training import load_checkpoint

    vae = make_vae(cfg).to(devices.resolve(device))
    load_checkpoint(Path(run_dir) / "vae" / "checkpoint.pt", _vae_config(cfg), {"vae": vae})
    return vae.eval()


# ----- 3. encoding ----------------------------------------------------------------------------


@torch.no_grad()
def encode_dataset(cfg: WorldModelsConfig, run_dir, vae: VAE | None = None,
                   progress: bool = True, device=None) -> dict[str, np.ndarray]:
    """Stage 3: every frame -> (mu, logvar) of q(z|o), saved as ``run_dir/series.npz`` with
    the actions, rewards, dones and each rollout's start offset (``starts``)."""
    run = _as_run(cfg, run_dir)
    out_path = run.dir / "series.npz"
    if out_path.exists():
        with np.load(out_path) as f:
            return {k: f[k] for k in f.files}
    vae = vae if vae is not None else load_vae(cfg, run.dir, device)
    vae.eval()
    dev = vae.mu.weight.device
    start = time.time()
    keys = ("mu", "logvar", "action", "reward", "done")
    parts: dict[str, list] = {k: [] for k in keys}
    starts, n = [], 0
    paths = sorted((run.dir / "rollouts").glob("rollout_*.npz"))
    for p in tqdm(paths, desc="encoding", disable=not progress):
        ep = load_rollout(p)
        mus, logvars = [], []
        for k in range(0, len(ep["obs"]), 256):
            with devices.autocast(dev, cfg.bf16):
                q = vae.encode(envs.preprocess(devices.to_device(ep["obs"][k : k + 256], dev)))
            mus.append(q.loc.cpu().numpy())
            logvars.append(2 * q.scale.log().cpu().numpy())
        parts["mu"].append(np.concatenate(mus))
        parts["logvar"].append(np.concatenate(logvars))
        for k in ("action", "reward", "done"):
            parts[k].append(ep[k])
        starts.append(n)
        n += len(ep["obs"])
    series = {k: np.concatenate(v) for k, v in parts.items()}
    series["starts"] = np.asarray(starts + [n])
    np.savez(out_path, **series)
    seconds = time.time() - start
    run.add_time("encode", seconds)
    run.log(f"encoded {n} frames in {seconds:.0f} s ({n / seconds:.0f} frames/s)")
    return series


# ----- 4. M -----------------------------------------------------------------------------


def _rnn_config(cfg: WorldModelsConfig) -> dict:
    keys = ("latent_dim", "hidden", "mixtures", "rnn_seq_len", "rnn_batch", "rnn_lr",
            "rnn_steps", "rnn_grad_clip", "seed")
    added = _added_options(cfg, ("action_low", "action_high", "done_weight", "rnn_streams",
                                 "rnn_stateful"))
    return {k: getattr(cfg, k) for k in keys} | added | _vae_config(cfg)


def sequence_batch(series: dict, batch: int, seq_len: int, rng: np.random.Generator,
                   sample_z: bool = True, device=None,
                   streams: bool = False) -> dict[str, torch.Tensor]:
    """B windows of L steps from the encoded rollouts, as M's training pairs:

        input (z_t, a_t) -> targets z_{t+1}, r_{t+1}, done_{t+1},

    where a_t is the action taken after seeing o_t (``action[t+1]`` in replay alignment) and
    z_t ~ N(mu_t, sigma_t^2) is drawn afresh each time, as the original does (augmentation).
    Windows start at random steps; rollouts shorter than L + 1 frames are padded with their last
    step and masked out (``mask``). The tensors are returned on ``device`` (default: the CPU).

    ``streams=True`` is the original Doom model's batching (``doomrnn.py``): the rollouts are
    one stream, one after the other, and a window may run from one rollout into the next;
    ``restart`` marks the steps whose z_t is a rollout's first frame (M resets its LSTM there),
    and the step that would cross from one rollout's last frame to the next one's first is
    masked out (it is no transition; the original trains on it).
    """
    starts = series["starts"]
    idx = np.zeros((batch, seq_len + 1), np.int64)
    mask = np.zeros((batch, seq_len), np.float32)
    if streams:
        n = int(starts[-1])
        if n < seq_len + 1:
            raise ValueError(f"the rollouts hold {n} frames, fewer than a window of "
                             f"{seq_len + 1}: lower rnn_seq_len or collect more")
        first = np.zeros(n, bool)
        first[starts[:-1]] = True
        idx = rng.integers(0, n - seq_len, batch)[:, None] + np.arange(seq_len + 1)
        mask = (~first[idx[:, 1:]]).astype(np.float32)
    else:
        lengths = np.diff(starts)
        eps = rng.integers(0, len(lengths), batch)
        for b, e in enumerate(eps):
            L = lengths[e]
            t0 = rng.integers(0, max(1, L - seq_len))
            t = np.minimum(t0 + np.arange(seq_len + 1), L - 1)
            idx[b] = starts[e] + t
            mask[b] = (t0 + np.arange(1, seq_len + 1)) <= L - 1
    mu = series["mu"][idx]
    z = (mu + np.exp(0.5 * series["logvar"][idx]) * rng.standard_normal(mu.shape).astype(
        np.float32)) if sample_z else mu
    out = {"z": z[:, :-1], "z_next": z[:, 1:], "action": series["action"][idx[:, 1:]],
           "reward": series["reward"][idx[:, 1:]],
           "done": series["done"][idx[:, 1:]].astype(np.float32), "mask": mask}
    if streams:
        out["restart"] = first[idx[:, :-1]].astype(np.float32)
    dev = torch.device("cpu") if device is None else device
    return {k: devices.to_device(np.ascontiguousarray(v), dev) for k, v in out.items()}


class StatefulStreams:
    """The original Doom model's batching (WorldModelsExperiments, ``doomrnn/rnn_train.py``:
    ``create_batches`` and ``batch_state``): truncated backpropagation through time.

    Each epoch the rollouts are shuffled and laid end to end, the stream is cut into ``batch``
    rows of equal length, and each row is read in consecutive windows of ``seq_len`` steps.
    M carries its LSTM state from one window to the next (detached), so that it learns to
    predict from a memory as old as the episode, as it must in a dream of a thousand steps;
    a window drawn afresh from a zero state (:func:`sequence_batch`) teaches it nothing past
    ``seq_len`` steps. The state is reset where a rollout starts (``restart``) and at the start
    of each epoch (``new_epoch``); the step from one rollout's last frame to the next one's
    first is masked out, as in :func:`sequence_batch` with ``streams=True``.
    """

    def __init__(self, series: dict, batch: int, seq_len: int, rng: np.random.Generator,
                 sample_z: bool = True, device=None):
        self.series, self.batch, self.seq_len, self.rng = series, batch, seq_len, rng
        self.sample_z, self.device = sample_z, device
        starts = series["starts"]
        self.first = np.zeros(int(starts[-1]), bool)
        self.first[starts[:-1]] = True
        self.windows = (int(starts[-1]) // batch - 1) // seq_len  # per row and epoch
        if self.windows < 1:
            raise ValueError(f"the rollouts hold {int(starts[-1])} frames, fewer than {batch} "
                             f"rows of a window of {seq_len + 1}: lower rnn_batch or "
                             "rnn_seq_len, or collect more")
        self.rows, self.k = None, self.windows

    def _new_epoch(self) -> None:
        starts = self.series["starts"]
        order = self.rng.permutation(len(starts) - 1)
        stream = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in order])
        self.rows = stream[: len(stream) // self.batch * self.batch].reshape(self.batch, -1)
        self.k = 0

    def next(self) -> dict[str, torch.Tensor | bool]:
        """The next window of every row: the tensors of :func:`sequence_batch` with
        ``streams=True``, and ``new_epoch`` (True where M's state must start from zero)."""
        new_epoch = self.k >= self.windows
        if new_epoch:
            self._new_epoch()
        t0 = self.k * self.seq_len
        idx = self.rows[:, t0 : t0 + self.seq_len + 1]
        self.k += 1
        s, rng = self.series, self.rng
        mu = s["mu"][idx]
        z = (mu + np.exp(0.5 * s["logvar"][idx]) * rng.standard_normal(mu.shape).astype(
            np.float32)) if self.sample_z else mu
        out = {"z": z[:, :-1], "z_next": z[:, 1:], "action": s["action"][idx[:, 1:]],
               "reward": s["reward"][idx[:, 1:]], "done": s["done"][idx[:, 1:]].astype(
                   np.float32), "mask": (~self.first[idx[:, 1:]]).astype(np.float32),
               "restart": self.first[idx[:, :-1]].astype(np.float32)}
        dev = torch.device("cpu") if self.device is None else self.device
        batch = {k: devices.to_device(np.ascontiguousarray(v), dev) for k, v in out.items()}
        return batch | {"new_epoch": new_epoch}


def train_mdnrnn(cfg: WorldModelsConfig, run_dir, series: dict | None = None,
                 progress: bool = True, device=None) -> tuple[MDNRNN, History]:
    """Stage 4: train M on windows of the encoded rollouts, on ``device`` (default: the
    session's; checkpoint in ``run_dir/mdnrnn``).

    Loss: the mixture NLL of z_{t+1} + MSE of the reward + BCE of done (M, the MDN-RNN of
    Ha and Schmidhuber 2018)."""
    run = _as_run(cfg, run_dir)
    dev = devices.resolve(device)
    series = series if series is not None else encode_dataset(cfg, run.dir, progress=progress,
                                                              device=dev)
    m = make_mdnrnn(cfg).to(dev)
    opt = torch.optim.Adam(m.parameters(), lr=cfg.rnn_lr)
    rng = np.random.default_rng(cfg.seed + 1)

    streams = StatefulStreams(series, cfg.rnn_batch, cfg.rnn_seq_len, rng,
                              device=dev) if cfg.rnn_stateful else None
    carried: dict = {"state": None}  # M's LSTM state at the end of the last window

    def update(step):
        if streams is not None:
            b = streams.next()
            hidden = None if b["new_epoch"] else carried["state"]
        else:
            b = sequence_batch(series, cfg.rnn_batch, cfg.rnn_seq_len, rng, device=dev,
                               streams=cfg.rnn_streams)
            hidden = None
        out, state = m.loss_and_state(
            b["z"], b["action"], b["z_next"], reward=b["reward"], done=b["done"],
            mask=b["mask"],  # padding past a rollout's end is not trained on
            restart=b.get("restart"), done_weight=cfg.done_weight, hidden=hidden)
        carried["state"] = tuple(x.detach() for x in state)
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), cfg.rnn_grad_clip)
        opt.step()
        return scalars(out)

    history = _train_stage(
        run, "mdnrnn", update, cfg.rnn_steps, _rnn_config(cfg), {"mdnrnn": m, "optim": opt},
        "M (MDN-RNN)", progress,
        lambda h, s: (f"M: {cfg.rnn_steps} steps of {cfg.rnn_batch} x {cfg.rnn_seq_len}, "
                      f"{s:.0f} s, last nll {h.last('nll'):.3f}, reward mse "
                      f"{h.last('reward'):.3f}"))
    return m.eval(), history


def load_mdnrnn(cfg: WorldModelsConfig, run_dir, device=None) -> MDNRNN:
    from wmlib.training import load_checkpoint

    m = make_mdnrnn(cfg).to(devices.resolve(device))
    load_checkpoint(Path(run_dir) / "mdnrnn" / "checkpoint.pt", _rnn_config(cfg), {"mdnrnn": m})
    return m.eval()


# ----- 5. C with CMA-ES ----------------------------------------------------------------------


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


def train_controller(cfg: WorldModelsConfig, run_dir, name: str = "real_zh",
                     where: str = "real", use_hidden: bool = True,
                     generations: int | None = None, vae: VAE | None = None,
                     mdnrnn: MDNRNN | None = None, progress: bool = True,
                     device=None, temperature: float | None = None) -> dict:
    """Stage 5: evolve C with CMA-ES in the real environment (``where="real"``: episodes in CPU
    worker processes, which get V and M on the CPU) or in M's dream (``where="dream"``: one
    batch on M's device); search state, history and parameters in ``run_dir/C_<name>``.

    Returns ``params`` (the chosen controller: the final mean of the search distribution, or,
    with ``cfg.select_rollouts``, whichever of the mean and the best sample scores higher on that
    many extra tracks; the best sample's fitness is a lucky single draw, the mean usually
    drives better on new tracks), the
    :class:`~wmlib.evolution.ESResult` as ``es``, and ``seconds``. ``temperature``: the
    dream's tau (default ``cfg.dream_temperature``).
    """
    if where not in ("real", "dream"):
        raise ValueError(f"where must be 'real' or 'dream', got {where!r}")
    run = _as_run(cfg, run_dir)
    folder = run.dir / f"C_{name}"
    vae = vae if vae is not None else load_vae(cfg, run.dir, device)
    m = mdnrnn if mdnrnn is not None else load_mdnrnn(cfg, run.dir, device)
    c = make_controller(cfg, use_hidden)
    x0 = np.zeros(c.num_params)
    start = time.time()
    if where == "real":
        gens = cfg.generations if generations is None else generations
        args = _worker_args(cfg, vae, m, use_hidden, cfg.train_max_steps, cfg.patience)
        es = cmaes(_real_fitness, x0, cfg.sigma0, cfg.popsize, gens,
                   rollouts=cfg.rollouts_per_candidate, workers=cfg.workers,
                   initializer=_init_real_worker, initargs=args, seed=cfg.seed,
                   run_dir=folder, progress=progress, desc=f"C {name} (real)", log=run.log,
                   weight_decay=cfg.es_weight_decay)
    else:
        from wmlib.dream import dream_returns

        gens = cfg.dream_generations if generations is None else generations
        tau = cfg.dream_temperature if temperature is None else temperature
        series = encode_dataset(cfg, run.dir, vae, progress=False)
        dev = m.mdn.weight.device
        z0_all = devices.to_device(series["mu"][series["starts"][:-1]], dev)

        def batch_fitness(params, seeds):
            g = devices.generator(dev, seeds[0])
            pick = torch.randint(0, len(z0_all), (cfg.dream_rollouts,), generator=g, device=dev)
            return dream_returns(m, params, z0_all[pick], use_hidden=use_hidden,
                                 temperature=tau, steps=cfg.dream_steps, generator=g,
                                 low=cfg.action_low, high=cfg.action_high,
                                 brake_clip=cfg.brake_clip, reward=cfg.dream_reward).mean(1)

        es = cmaes(None, x0, cfg.sigma0, cfg.dream_popsize, gens, batch_fitness=batch_fitness,
                   rollouts=cfg.dream_rollouts, seed=cfg.seed, run_dir=folder,
                   progress=progress, desc=f"C {name} (dream)", log=run.log,
                   weight_decay=cfg.es_weight_decay)
    chosen = folder / "params.npy"
    if chosen.exists() and json.loads((folder / "choice.json").read_text())["generations"] \
            == es.generations:
        params = np.load(chosen)
    else:
        params, choice = es.mean_params, {"chosen": "mean"}
        if cfg.select_rollouts > 0:
            seeds = [SELECT_SEED + i for i in range(cfg.select_rollouts)]
            args = _worker_args(cfg, vae, m, use_hidden, cfg.train_max_steps, None)
            with Evaluator(_real_fitness, cfg.workers, _init_real_worker, args) as ev:
                scores = ev.map([(p, s) for p in (es.mean_params, es.best_params)
                                 for s in seeds])
            mean_score = float(np.mean(scores[: len(seeds)]))
            best_score = float(np.mean(scores[len(seeds) :]))
            if mean_score >= best_score:
                params = es.mean_params
            choice = {"chosen": "mean" if mean_score >= best_score else "best sample",
                      "mean_score": mean_score, "best_score": best_score}
        np.save(chosen, params)
        (folder / "choice.json").write_text(json.dumps(choice | {"generations": es.generations}))
        run.log(f"C {name}: {choice}")
    seconds = time.time() - start
    if seconds > 5:
        run.add_time(f"C_{name}", seconds)
    return {"params": params, "es": es, "seconds": seconds, "use_hidden": use_hidden}


# ----- 6. evaluation ------------------------------------------------------------------------


def evaluate_controller(cfg: WorldModelsConfig, run_dir, name: str, params: np.ndarray | None,
                        use_hidden: bool = True, episodes: int | None = None,
                        vae: VAE | None = None, mdnrnn: MDNRNN | None = None,
                        progress: bool = True) -> dict:
    """Stage 6: full-length episodes on ``episodes`` random tracks (seeds never used in
    training); ``params=None`` evaluates uniformly random actions. Saved as
    ``run_dir/eval_<name>.json`` and read back on a rerun with the same number of episodes
    (delete the file to evaluate new parameters under the same name)."""
    run = _as_run(cfg, run_dir)
    episodes = cfg.eval_episodes if episodes is None else episodes
    path = run.dir / f"eval_{name}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["episodes"] == episodes:
            return saved
    vae = vae if vae is not None else load_vae(cfg, run.dir)
    m = mdnrnn if mdnrnn is not None else load_mdnrnn(cfg, run.dir)
    start = time.time()
    args = _worker_args(cfg, vae, m, use_hidden, cfg.eval_max_steps, None)
    seeds = [EVAL_SEED + i for i in range(episodes)]
    returns = []
    with Evaluator(_real_fitness, cfg.workers, _init_real_worker, args) as ev:
        for s in tqdm(range(0, episodes, cfg.workers), desc=f"evaluating {name}",
                      disable=not progress):
            returns += ev.map([(params, seed) for seed in seeds[s : s + cfg.workers]])
    seconds = time.time() - start
    out = {"name": name, "episodes": episodes, "returns": [round(r, 1) for r in returns],
           "mean": round(float(np.mean(returns)), 1), "std": round(float(np.std(returns)), 1),
           "seconds": round(seconds, 1)}
    path.write_text(json.dumps(out))
    run.add_time(f"eval_{name}", seconds)
    run.log(f"evaluation {name}: {out['mean']} +- {out['std']} over {episodes} tracks "
            f"({seconds:.0f} s): {out['returns']}")
    return out


# ----- the whole pipeline -------------------------------------------------------------------


def run(profile: str | None = None, run_dir=None, record: bool = True, progress: bool = True,
        verbose: bool = True, device=None, **overrides) -> dict:
    """All stages in order, resuming from whatever ``run_dir`` holds, then the results:
    the z+h controller and the z-only ablation trained in the real environment, the controller
    trained in the dream, and the random policy, each evaluated on ``eval_episodes`` tracks.
    Writes ``results/ch02_world_models_<profile>.json`` unless ``record=False`` or smoke.
    V, M and the dream run on ``device`` (default: the session's); the real environment's
    episodes run in CPU worker processes."""
    from wmlib.profiles import current_profile, seed_everything

    profile = current_profile(profile)
    cfg = replace(CONFIGS[profile], **overrides)
    run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
    r = Run(cfg, run_dir, verbose=verbose)
    seed_everything(cfg.seed)
    dev = devices.resolve(device)
    r.log(f"World Models, profile {profile}, device {dev}")
    start = time.time()
    collect_rollouts(cfg, r, progress)
    vae, _ = train_vae(cfg, r, progress, device=dev)
    series = encode_dataset(cfg, r, vae, progress)
    m, _ = train_mdnrnn(cfg, r, series, progress, device=dev)
    controllers = {
        "real_zh": train_controller(cfg, r, "real_zh", "real", True, vae=vae, mdnrnn=m,
                                    progress=progress),
        "real_z": train_controller(cfg, r, "real_z", "real", False, cfg.zonly_generations,
                                   vae=vae, mdnrnn=m, progress=progress),
        "dream_zh": train_controller(cfg, r, "dream_zh", "dream", True, vae=vae, mdnrnn=m,
                                     progress=progress),
    }
    evals = {name: evaluate_controller(cfg, r, name, c["params"], c["use_hidden"], vae=vae,
                                       mdnrnn=m, progress=progress)
             for name, c in controllers.items()}
    evals["random"] = evaluate_controller(cfg, r, "random", None, progress=progress, vae=vae,
                                          mdnrnn=m)
    summary = summarize(cfg, r, evals, controllers)
    if record and profile != "smoke":
        record_results(summary, profile, r, time.time() - start)
    return summary


def summarize(cfg: WorldModelsConfig, run: Run, evals: dict, controllers: dict) -> dict:
    return {"env": cfg.env_id, "eval_episodes": cfg.eval_episodes,
            **{f"{k}_mean": v["mean"] for k, v in evals.items()},
            **{f"{k}_std": v["std"] for k, v in evals.items()},
            "returns": {k: v["returns"] for k, v in evals.items()},
            "generations": {k: c["es"].generations for k, c in controllers.items()},
            "evaluations": {k: c["es"].evaluations for k, c in controllers.items()},
            "stage_seconds": run.timings,
            "config": {k: v for k, v in asdict(cfg).items()}}


def record_results(summary: dict, profile: str, run: Run, wall_time_s: float | None = None,
                   name: str | None = None) -> Path:
    """Write ``results/ch02_world_models_<profile>.json`` with the run's log. The wall time
    defaults to the sum of the run's stage times (over every session that resumed it)."""
    from wmlib import results

    if wall_time_s is None:
        wall_time_s = sum(run.timings.values())

    log = (run.dir / "log.txt").read_text() if (run.dir / "log.txt").exists() else ""
    return results.record(
        name or f"ch02_world_models_{profile}", summary, profile=profile, seed=run.cfg.seed,
        wall_time_s=wall_time_s, log=log,
        notes="Ha & Schmidhuber (2018) report 906 +- 21 (z and h) and 632 +- 251 (z only) over "
              "100 tracks with 10,000 rollouts, population 64, 16 rollouts per candidate and "
              "about 1800 generations: the paper's numbers, cited, not ours.")
