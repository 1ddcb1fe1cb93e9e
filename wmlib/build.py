"""Execute chapter notebooks headless in a chosen profile, writing executed copies to build/.

For instructors (regenerate a chapter in the profile their course uses) and for checking
outputs: ``python -m wmlib build 1 --profile smoke`` writes ``build/01_planning.ipynb``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from wmlib.paths import checkout

ROOT = checkout(Path(__file__).resolve().parent) or checkout()


def chapter_notebooks() -> list[Path]:
    """The chapters of the book's checkout (the one holding wmlib, else the working
    directory's); a clear error when wmlib is installed without a checkout."""
    if ROOT is None:
        raise FileNotFoundError(
            "No checkout of the book here: `build` executes the chapters of a checkout. Clone "
            "https://github.com/world-models-book/world-models-book and run it inside, or pass "
            "paths to .ipynb files.")
    return sorted(p for p in (ROOT / "chapters").glob("*/*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts)


def resolve(chapters: list[str]) -> list[Path]:
    """Chapter numbers ("1"), folder names or notebook paths -> notebook paths."""
    if chapters and all(Path(c).suffix == ".ipynb" and Path(c).exists() for c in chapters):
        return [Path(c).resolve() for c in chapters]
    known = chapter_notebooks()
    if not chapters:
        return known
    out = []
    for c in chapters:
        p = Path(c)
        if p.suffix == ".ipynb" and p.exists():
            out.append(p.resolve())
            continue
        match = [nb for nb in known if nb.parent.name == c or nb.stem == c
                 or (c.isdigit() and nb.parent.name.startswith(f"{int(c):02d}_"))]
        if not match:
            names = ", ".join(nb.parent.name for nb in known)
            raise FileNotFoundError(f"No chapter {c!r}. Chapters: {names} (or a path to a .ipynb).")
        out.extend(match)
    return out


def build(chapters: list[str], profile: str = "smoke", out: str | Path = "build",
          timeout: int = 3600) -> list[Path]:
    """Run each notebook top to bottom with ``WMLIB_PROFILE=profile``; save it under ``out``."""
    import nbformat
    from nbclient import NotebookClient

    from wmlib.profiles import check_profile

    check_profile(profile)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    old = os.environ.get("WMLIB_PROFILE")
    os.environ["WMLIB_PROFILE"] = profile
    os.environ["WMLIB_HEADLESS"] = "1"  # no widgets in executed copies (`wmlib.viz.interactive`)
    try:
        for nb_path in resolve(chapters):
            nb = nbformat.read(nb_path, as_version=4)
            nb.metadata.pop("widgets", None)  # the state of widgets of an earlier execution
            start = time.time()
            NotebookClient(nb, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(nb_path.parent)}}).execute()
            target = out / nb_path.name
            nbformat.write(nb, target)
            written.append(target)
            shown = (nb_path.relative_to(ROOT) if ROOT and nb_path.is_relative_to(ROOT)
                     else nb_path.name)
            print(f"{shown} -> {target} ({profile}, {time.time() - start:.0f} s)")
    finally:
        if old is None:
            os.environ.pop("WMLIB_PROFILE", None)
        else:
            os.environ["WMLIB_PROFILE"] = old
    return written
