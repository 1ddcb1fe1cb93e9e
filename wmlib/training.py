"""The shared training support: metrics history, checkpoints that know their configuration,
and one training loop that resumes after an interrupt.

Every agent trains through :func:`train_loop`: it calls ``update(step)`` (which returns a dict
of metrics) ``total`` times behind a tqdm bar, saves a checkpoint every ``save_every`` steps,
resumes from the checkpoint in ``run_dir`` when one exists, and on ``KeyboardInterrupt`` (the
stop button in Jupyter) saves and returns what was learned so far. With a ``run_dir`` it also
writes every step's metrics as TensorBoard event files there (`summary_writer`): live curves
while a run trains (``tensorboard --logdir runs``); the history in the checkpoint, the log and
``results/`` stay the record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch

from wmlib.progress import tqdm


class CheckpointMismatch(ValueError):
    """A checkpoint saved under another configuration."""


class History:
    """Metrics over training steps: ``log(step, loss=..., ret=...)``; plot, save and reload."""

    def __init__(self):
        self.data: dict[str, list[tuple[int, float]]] = defaultdict(list)

    def log(self, step: int, **metrics: float) -> None:
        for k, v in metrics.items():
            self.data[k].append((int(step), float(v)))

    def __getitem__(self, key: str) -> tuple[list[int], list[float]]:
        steps, values = zip(*self.data[key]) if self.data.get(key) else ((), ())
        return list(steps), list(values)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def last(self, key: str, default: float = math.nan) -> float:
        return self.data[key][-1][1] if self.data.get(key) else default

    def state_dict(self) -> dict:
        return {k: list(v) for k, v in self.data.items()}

    def load_state_dict(self, state: dict) -> None:
        self.data = defaultdict(list, {k: [tuple(x) for x in v] for k, v in state.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.state_dict()))

    @classmethod
    def load(cls, path: str | Path) -> History:
        h = cls()
        h.load_state_dict(json.loads(Path(path).read_text()))
        return h

    def plot(self, *keys: str, ax=None, smooth: int = 1, **kw):
        from wmlib.viz import plot_curves

        return plot_curves(self, *keys, ax=ax, smooth=smooth, **kw)


def scalars(metrics: dict) -> dict[str, float]:
    """Metrics as floats; tensors are read together, with one device sync for all of them."""
    keys = [k for k, v in metrics.items() if isinstance(v, torch.Tensor)]
    values = torch.stack([metrics[k].detach().float() for k in keys]).tolist() if keys else []
    floats = dict(zip(keys, values))
    return {k: floats[k] if k in floats else float(v) for k, v in metrics.items()}


def config_dict(config) -> dict:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def fingerprint(config) -> str:
    """A short hash of a configuration (a dataclass or a dict)."""
    blob = json.dumps(config_dict(config), sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def save_checkpoint(path: str | Path, config, step: int, modules: dict,
                    history: History | None = None, **extra) -> None:
    """Save ``modules`` (anything with ``state_dict``) with the config, step and history.

    The file is written beside and then renamed, so an interrupt never leaves half a checkpoint.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"config": config_dict(config), "fingerprint": fingerprint(config), "step": step,
             "modules": {k: m.state_dict() for k, m in modules.items()},
             "history": history.state_dict() if history is not None else None, "extra": extra}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, config, modules: dict, history: History | None = None,
                    map_location="cpu") -> dict:
    """Load a checkpoint into ``modules``; refuse one saved under another configuration.

    The tensors are read onto ``map_location`` (the CPU by default) and then copied into the
    modules wherever they live (``load_state_dict`` keeps each parameter's device, and an
    optimiser moves its state to its parameters' device): a run saved on a GPU resumes on a CPU
    and the reverse.
    """
    state = torch.load(Path(path), map_location=map_location, weights_only=False)
    if state["fingerprint"] != fingerprint(config):
        ours, theirs = config_dict(config), state["config"]
        # Options added to a config class after the checkpoint was saved do not make it
        # another configuration when they hold the value that reproduces the old behaviour
        # (the class lists those in ``LEGACY``; options not listed there always count).
        legacy = getattr(type(config), "LEGACY", {})
        added = {k for k, v in legacy.items() if k not in theirs and ours.get(k) == v}
        diff = {k: (theirs.get(k), ours.get(k)) for k in sorted(set(ours) | set(theirs))
                if ours.get(k) != theirs.get(k) and k not in added}
    else:
        diff = {}
    if diff:
        lines = "\n".join(f"  {k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise CheckpointMismatch(
            f"The checkpoint {path} was saved with another configuration:\n{lines}\n"
            "Use the configuration it was trained with, or start a fresh run directory.")
    missing = set(modules) - set(state["modules"])
    if missing:
        raise CheckpointMismatch(f"The checkpoint {path} holds no state for {sorted(missing)}.")
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    if history is not None and state["history"] is not None:
        history.load_state_dict(state["history"])
    return state


def summary_writer(run_dir: str | Path, purge_step: int):
    """A TensorBoard writer of event files in ``run_dir``. ``purge_step``: the step the run
    resumes from; TensorBoard hides what an interrupted session wrote from there on (the steps
    after its last checkpoint, which the resumed run trains again)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # torch's module needs the tensorboard package
        raise ImportError("Training writes TensorBoard event files and needs the tensorboard "
                          "package: pip install tensorboard (or pip install -e . in the "
                          "book's checkout).") from e
    return SummaryWriter(log_dir=str(run_dir), purge_step=purge_step, flush_secs=30)


def train_loop(update: Callable[[int], dict], total: int, *, config, modules: dict,
               history: History | None = None, run_dir: str | Path | None = None,
               save_every: int = 100, desc: str = "training", progress: bool = True,
               start: int = 0, budget_s: float | None = None) -> History:
    """Call ``update(step)`` for steps ``0..total-1``, log, checkpoint, resume, survive Ctrl-C.

    ``modules`` maps names to objects with ``state_dict``/``load_state_dict`` (networks,
    optimisers). With ``run_dir``, the loop resumes from ``run_dir/checkpoint.pt``; without,
    it counts from ``start`` (to continue a run held in memory). With ``budget_s``, the loop
    stops (and checkpoints) after the first step that ends more than ``budget_s`` seconds after
    it began, so that a run fits a session; a rerun continues from there. Each checkpoint logs
    ``wall_s``, the training seconds summed over every session of the run (a killed session
    counts up to its last checkpoint, whose steps are the ones kept). With ``run_dir`` each
    step's metrics also go to TensorBoard event files in ``run_dir`` (`summary_writer`), one
    scalar per metric, tagged with its name, at the step's index.
    """
    history = history if history is not None else History()
    ckpt = Path(run_dir) / "checkpoint.pt" if run_dir else None
    if ckpt is not None and ckpt.exists():
        start = load_checkpoint(ckpt, config, modules, history)["step"]
    prior = history.last("wall_s", 0.0)

    writer = summary_writer(run_dir, purge_step=start) if ckpt and start < total else None

    def save(at: int) -> None:
        history.log(at, wall_s=prior + time.time() - began)
        save_checkpoint(ckpt, config, at, modules, history)
        if writer is not None:
            writer.flush()

    bar = tqdm(range(start, total), desc=desc, initial=start, total=total, disable=not progress)
    step = start
    began = time.time()
    try:
        for step in bar:
            metrics = update(step)
            history.log(step, **metrics)
            if writer is not None:
                for k, v in metrics.items():
                    writer.add_scalar(k, v, step)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(metrics.items())[:4]})
            if ckpt is not None and (step + 1) % save_every == 0:
                save(step + 1)
            if budget_s is not None and time.time() - began > budget_s and step + 1 < total:
                step += 1
                print(f"Time budget of {budget_s / 60:.0f} min reached after {step} of {total} "
                      "steps" + ("; run again to continue." if ckpt else "."))
                break
        else:
            step = total
    except KeyboardInterrupt:
        print(f"Interrupted at step {step}: saving what was learned so far"
              + (f" to {ckpt}; run again to resume." if ckpt else "."))
    finally:
        bar.close()
    if ckpt is not None:
        save(step)
    if writer is not None:
        writer.close()
    return history
