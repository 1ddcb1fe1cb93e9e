"""Profiles: one code path, three sizes.

- ``smoke``: seconds per notebook; CI and nbval use it. Checks that everything runs.
- ``quick``: minutes on 2 CPU cores; learning is visible. Default without a GPU.
- ``full``: the papers' settings, for one GPU. Default when CUDA is present.

Choose with the environment variable ``WMLIB_PROFILE`` or the ``profile=`` argument of
:func:`setup`. Each agent keeps one config dataclass per profile in a dict
``CONFIGS = {"smoke": ..., "quick": ..., "full": ...}`` and reads it with :func:`pick`.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

PROFILES = ("smoke", "quick", "full")
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


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def current_profile(profile: str | None = None) -> str:
    """The profile in force: the argument, else ``$WMLIB_PROFILE``, else full/quick with/without
    CUDA."""
    if profile is None:
        profile = os.environ.get("WMLIB_PROFILE", "").strip() or None
    if profile is None:
        profile = "full" if torch.cuda.is_available() else "quick"
    return check_profile(profile)


def pick(configs: dict[str, T], profile: str | None = None) -> T:
    """The config of the profile in force from ``{"smoke": ..., "quick": ..., "full": ...}``."""
    return configs[current_profile(profile)]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
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
    """Seed everything, pick the profile and device, and print them (a chapter's first call)."""
    seed_everything(seed)
    dev = torch.device(device) if device else default_device()
    ctx = Context(current_profile(profile), dev, seed)
    if verbose:
        print(ctx.describe())
    return ctx
