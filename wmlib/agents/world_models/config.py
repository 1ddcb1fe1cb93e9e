"""What a run of chapter 2's World Models pipeline is: its configuration
(`WorldModelsConfig`, one per profile in `CONFIGS`), the seeds of its tracks, and its run
directory (`Run`: the saved configuration, the log and each stage's wall time), with the
resumable training stage that V and M share (`_train_stage`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wmlib.models.controller import CAR_RACING_HIGH, CAR_RACING_LOW
from wmlib.training import History, train_loop

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


def _added_options(cfg: WorldModelsConfig, keys: tuple[str, ...]) -> dict:
    """Options added after chapter 2's CarRacing runs were saved enter a stage's fingerprint
    only where they differ from their defaults, so that those runs still load."""
    default = WorldModelsConfig()
    return {k: getattr(cfg, k) for k in keys if getattr(cfg, k) != getattr(default, k)}


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
