"""Stage 4 of World Models: M, the MDN-RNN, trained on windows of the encoded rollouts
(`sequence_batch`; with Doom's stateful training, consecutive windows of `StatefulStreams`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wmlib import devices
from wmlib.agents.world_models.config import (
    WorldModelsConfig,
    _added_options,
    _as_run,
    _train_stage,
)
from wmlib.agents.world_models.game import make_mdnrnn
from wmlib.agents.world_models.vision import _vae_config, encode_dataset
from wmlib.models.mdnrnn import MDNRNN
from wmlib.training import History, scalars


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
