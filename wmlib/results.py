"""Honest results: every number the book reports is written with its provenance.

:func:`record` writes ``results/<name>.json`` with the values and their profile, hardware,
seed, git commit, wall time and date, beside ``results/<name>.log`` (the run log).
``results/`` is `wmlib.paths.results_dir`: the checkout's in a checkout, else under the working
directory (or ``$WMLIB_RESULTS``), never inside the installed package.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import torch


def git_commit() -> str:
    """The commit of the working tree, with ``-dirty`` when it has uncommitted changes outside
    ``results/`` (a run that records two files would otherwise mark the second dirty) and the
    notebooks' saved outputs (``chapters/*/*.ipynb``, rewritten by every build)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":!results", ":!chapters/*/*.ipynb"],
                               cwd=root, text=True, capture_output=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} x {cpu}; {gpu}"


def record(name: str, values: dict, *, profile: str, seed: int, wall_time_s: float,
           log: str = "", notes: str = "", directory: str | Path | None = None,
           device: str | None = None) -> Path:
    """Write ``values`` with their provenance to ``<directory>/<name>.json`` and the log."""
    from wmlib.paths import results_dir

    directory = Path(directory) if directory else results_dir()
    directory.mkdir(parents=True, exist_ok=True)
    from wmlib import __version__
    from wmlib.devices import default_device

    entry = {"name": name, "values": values, "profile": profile, "seed": seed,
             "device": str(device or default_device()),
             "wall_time_s": round(wall_time_s, 1), "hardware": hardware(),
             "wmlib": __version__,
             "commit": git_commit(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
             "torch": torch.__version__, "notes": notes, "log": f"{name}.log"}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(entry, indent=2) + "\n")
    (directory / f"{name}.log").write_text(log)
    return path


def load(pattern: str, directory: str | Path | None = None) -> list[dict]:
    """Every recorded result whose name matches the glob ``pattern`` (e.g.
    ``"ch04_ablation_*_quick"``), sorted by name: what the chapters' tables are made from."""
    from wmlib.paths import results_dir

    directory = Path(directory) if directory else results_dir()
    return [json.loads(p.read_text()) for p in sorted(directory.glob(f"{pattern}.json"))]
