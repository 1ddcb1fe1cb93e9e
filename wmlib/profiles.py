"""Profiles: one code path, four sizes.

- ``smoke``: seconds per notebook; CI and nbval use it. Checks that everything runs.
- ``quick``: minutes on 2 CPU cores; learning is visible. Default without a GPU.
- ``gpu``: one Colab session: at most about an hour per chapter on a T4-class GPU (16 GB),
  with a wall-clock budget on every long run. Default when CUDA is present.
- ``full``: the papers' settings (hours to days on one GPU); only when chosen explicitly.

Choose with the environment variable ``WMLIB_PROFILE`` or the ``profile=`` argument of
:func:`setup`. Each agent keeps one config dataclass per profile in a dict
``CONFIGS = {"smoke": ..., "quick": ..., "gpu": ..., "full": ...}`` and reads it with
:func:`pick`. The automatic choice never starts a run longer than a Colab session.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from wmlib import devices
from wmlib.devices import default_device

PROFILES = ("smoke", "quick", "gpu", "full")
T = TypeVar("T")


class ProfileError(ValueError):
    """An unknown profile name."""


def check_profile(name: str) -> str:
    """Return ``name`` if it is a valid profile, else raise a :class:`ProfileError`."""
    if name not in PROFILES:
        raise ProfileError(
            f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)}. "
            "Set it with WMLIB_PROFILE=quick (for example) or wmlib.setup(profile='quick')."
        )
    return name


def current_profile(profile: str | None = None) -> str:
    """The profile in force: the argument, else ``$WMLIB_PROFILE``, else ``gpu`` when the
    session's device is a GPU and ``quick`` otherwise (never ``full``: it must be asked for)."""
    if profile is None:
        profile = os.environ.get("WMLIB_PROFILE", "").strip() or None
    if profile is None:
        profile = "gpu" if default_device().type == "cuda" else "quick"
    return check_profile(profile)


def pick(configs: dict[str, T], profile: str | None = None) -> T:
    """The config of the profile in force from ``{"smoke": ..., "quick": ..., "gpu": ...,
    "full": ...}``."""
    name = current_profile(profile)
    if name not in configs:
        raise ProfileError(f"This configuration has no {name!r} entry (it has "
                           f"{', '.join(configs)}).")
    return configs[name]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    Environments, action spaces and replay sampling have generators of their own; the agents
    seed those from the run's seed too."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Context:
    """What :func:`setup` decided: the profile, the device and the seed of this run."""

    profile: str
    device: torch.device
    seed: int

    def describe(self) -> str:
        from wmlib import __version__

        gpu = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "none"
        return (
            f"wmlib {__version__} | profile: {self.profile} | device: {self.device} "
            f"(GPU: {gpu}) | seed: {self.seed}\n"
            f"python {platform.python_version()} | torch {torch.__version__} | "
            f"numpy {np.__version__} | {os.cpu_count()} CPU cores | "
            f"MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}"
        )


def setup(profile: str | None = None, seed: int = 0, device: str | None = None,
          verbose: bool = True) -> Context:
    """Seed everything, pick the device and the profile, and print them (a chapter's first call).

    The device is ``device``, else ``$WMLIB_DEVICE``, else CUDA when available, else the CPU;
    it becomes the session's device (`wmlib.devices.default_device`), which every agent,
    planner and command of the library uses unless it is given another.
    """
    seed_everything(seed)
    dev = devices.choose(device)
    ctx = Context(current_profile(profile), dev, seed)
    if verbose:
        print(ctx.describe())
    return ctx
