"""One device for the whole run, chosen once by :func:`wmlib.setup`.

Every agent, model, planner, dream, evaluator, benchmark and CLI command of the book takes its
device from here unless it is given one:

* :func:`resolve` turns ``"cuda"``, ``"cpu"``, ``"cuda:1"`` (or ``None``: the session's choice) into
  a :class:`torch.device`, with a clear error for a device this machine does not have;
* :func:`default_device` is the session's choice: what :func:`wmlib.setup` picked, else
  ``$WMLIB_DEVICE``, else CUDA when available, else the CPU;
* :func:`autocast` is bfloat16 autocast with the device's own type where the device supports
  it (the CPU, and GPUs with bf16), and a no-op elsewhere;
* :func:`compiled` is ``torch.compile`` where it works on this machine, and the plain function
  with a warning where it does not (no C++ compiler, an unsupported platform);
* :func:`to_device` copies replay arrays to the device *before* converting them, so uint8
  pixels cross the bus as bytes (a 50 x 50 batch of 64x64 frames is 31 MB as uint8, 123 MB as
  float32).
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings

import numpy as np
import torch

_CHOSEN: torch.device | None = None  # set by wmlib.setup


class DeviceError(ValueError):
    """A device name that is malformed or not available on this machine."""


def resolve(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a :class:`torch.device` (``None``: :func:`default_device`), checked."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"Unknown device {device!r} ({e}). Use 'cpu', 'cuda' or 'cuda:N' "
                          "(WMLIB_DEVICE, --device or wmlib.setup(device=...)).") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"Device {device!r} was asked for, but torch {torch.__version__} sees no CUDA GPU "
            "(a CPU build of torch, or no GPU in this session; in Colab choose Runtime > Change "
            "runtime type > GPU). Use device='cpu' or unset WMLIB_DEVICE.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"Device {device!r} does not exist: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s).")
    return dev


def default_device() -> torch.device:
    """The session's device: set by :func:`wmlib.setup`, else ``$WMLIB_DEVICE``, else CUDA
    when available, else the CPU."""
    if _CHOSEN is not None:
        return _CHOSEN
    env = os.environ.get("WMLIB_DEVICE", "").strip()
    if env:
        return resolve(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def choose(device: str | torch.device | None = None) -> torch.device:
    """Fix the session's device (what :func:`wmlib.setup` calls) and return it."""
    global _CHOSEN
    _CHOSEN = None
    _CHOSEN = resolve(device)
    return _CHOSEN


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 runs natively, and so fast, on ``device``: CPUs with AVX-512 BF16 or
    AMX (elsewhere PyTorch emulates bf16 matrix products, measured 150 times slower than float32
    on an AVX2 CPU), and GPUs from Ampere on."""
    device = torch.device(device)
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return False


def autocast(device: torch.device | str, enabled: bool = True):
    """bfloat16 autocast of ``device``'s type, or a no-op where it is off or where the device
    has no native bf16 (`bf16_supported`: a T4 GPU, a CPU without AVX-512 BF16): a speed
    option, so it is only used where it is fast."""
    device = torch.device(device)
    if enabled and bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(x, device: torch.device | str, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An array or tensor on ``device``, copied first and converted there (``dtype``)."""
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    t = t.to(device, non_blocking=True)
    return t if dtype is None else t.to(dtype)


def generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A seeded :class:`torch.Generator` on ``device`` (draws meant for a model on a GPU must
    come from a GPU generator)."""
    return torch.Generator(torch.device(device)).manual_seed(seed)


def check_generator(gen: torch.Generator | None, device: torch.device | str | None) -> None:
    """Refuse a generator that lives on another device type than the tensors it draws."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    if gen is not None and gen.device.type != dev.type:
        raise DeviceError(f"The generator is on {gen.device} but the draws are for {dev}; "
                          f"make it with wmlib.devices.generator({str(dev)!r}, seed).")


@functools.cache
def compile_available(device_type: str = "cpu") -> str | None:
    """``None`` where ``torch.compile`` compiles a function and its gradient on this device
    type, else why not (the first line of the error). Tried once per process, on a toy
    function (a few seconds the first time)."""
    try:
        with torch.enable_grad():  # also when asked from inside torch.no_grad()
            x = torch.ones(4, device=device_type, requires_grad=True)
            torch.compile(lambda t: (t * 2).square().sum())(x).backward()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


# inductor's options for every compiled function of the book (see `compiled`)
COMPILE_OPTIONS = {"fallback_random": True, "cpp.use_decompose_tanh": True}


def compiled(fn, device: torch.device | str, enabled: bool = True):
    """``torch.compile(fn)`` where compilation works on ``device`` (`compile_available`), else
    ``fn`` itself, with a warning that says why and what runs instead (a speed option: the
    results are the same either way, within float rounding).

    Random draws inside ``fn`` (``torch.randn_like``) come from PyTorch's own generator, as in
    eager mode (inductor's ``fallback_random``): the compiled and eager paths then draw the same
    numbers from the same seed, and on the CPU inductor's generated sampler was the slowest part
    of a compiled CEM rollout (measured at PlaNet's size on a 2-core CPU: 700 against 81 us for
    1000 x 30 normals). On the CPU, tanh is computed from exp (``cpp.use_decompose_tanh``,
    within float32 rounding of ``torch.tanh``): it halves the GRU's gate kernel in that
    rollout (390 against 220 us for 1000 x 200 gates in bfloat16)."""
    if not enabled:
        return fn
    why = compile_available(torch.device(device).type)
    if why is None:
        return torch.compile(fn, options=COMPILE_OPTIONS)
    warnings.warn(f"torch.compile is unavailable here ({why}); {getattr(fn, '__name__', fn)} "
                  "runs eagerly (the same results, without the compiled speed-up). Install a "
                  "C++ compiler (apt install g++) to enable it, or set compile=False.",
                  RuntimeWarning, stacklevel=2)
    return fn
