"""Stages 2 and 3 of World Models: V, the VAE, trained on the rollouts' frames
(`train_vae`), and every frame encoded to q(z | o)'s mean and log-variance (`encode_dataset`),
M's training data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from wmlib import devices, envs
from wmlib.agents.world_models.config import (
    WorldModelsConfig,
    _added_options,
    _as_run,
    _train_stage,
)
from wmlib.agents.world_models.game import make_vae
from wmlib.agents.world_models.rollouts import load_rollout
from wmlib.models.vae import VAE
from wmlib.progress import tqdm
from wmlib.training import History, scalars


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


def load_vae(cfg: WorldModelsConfig, run_dir, device=None) -> VAE:
    from wmlib.training import load_checkpoint

    vae = make_vae(cfg).to(devices.resolve(device))
    load_checkpoint(Path(run_dir) / "vae" / "checkpoint.pt", _vae_config(cfg), {"vae": vae})
    return vae.eval()


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
