"""Where the book writes: run directories (checkpoints, replay, logs) and results.

Nothing is written inside the installed package. The *home* directory is

1. ``$WMLIB_HOME`` when set;
2. else the book's checkout that contains the working directory (a folder with ``wmlib/`` and
   ``chapters/`` beside ``pyproject.toml``), so that notebooks opened in ``chapters/NN_name/``
   share the checkout's ``runs/`` and ``results/``;
3. else the working directory itself (Colab's ``/content``, or any folder of yours).

Runs go to ``<home>/runs`` and results to ``<home>/results`` (``$WMLIB_RESULTS`` overrides the
latter).
"""

from __future__ import annotations

import os
from pathlib import Path


def checkout(start: str | Path | None = None) -> Path | None:
    """The root of the book's checkout containing ``start`` (default: the working
    directory), or None outside one."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if ((folder / "pyproject.toml").is_file() and (folder / "wmlib").is_dir()
                and (folder / "chapters").is_dir()):
            return folder
    return None


def home() -> Path:
    """``$WMLIB_HOME``, else the enclosing checkout, else the working directory."""
    env = os.environ.get("WMLIB_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    return checkout() or Path.cwd()


def runs_dir(name: str | None = None) -> Path:
    """``<home>/runs`` (or ``<home>/runs/<name>``)."""
    base = home() / "runs"
    return base / name if name else base


def results_dir() -> Path:
    """``$WMLIB_RESULTS``, else ``<home>/results``."""
    env = os.environ.get("WMLIB_RESULTS", "").strip()
    return Path(env).expanduser() if env else home() / "results"


def show(path: str | Path) -> str:
    """``path`` relative to the home directory when inside it (no machine paths in outputs)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(home().resolve()))
    except ValueError:
        return path.name if path.is_absolute() else str(path)
