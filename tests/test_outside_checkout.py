"""Every chapter runs as Colab runs it: from a folder outside the repository (Colab's
``/content``), with ``wmlib`` installed as a normal copy in a site-packages-like folder (not
an editable link back to the checkout), in the smoke profile.

The test copies the package and the notebooks into a temporary directory, executes each
notebook there with nbclient, and checks that the run wrote its runs/ under that working
directory, that nothing was written into the checkout, that the notebook imported the copied
package, and that no output shows the machine's paths.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "chapters").glob("*/*.ipynb"))


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A non-editable copy of wmlib, as pip puts it in site-packages."""
    site = tmp_path_factory.mktemp("site-packages")
    shutil.copytree(ROOT / "wmlib", site / "wmlib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return site


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_chapter_runs_from_outside_the_checkout(notebook, installed, tmp_path, monkeypatch):
    content = tmp_path / "content"
    content.mkdir()
    shutil.copy(notebook, content / notebook.name)
    nb = nbformat.read(content / notebook.name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import wmlib, pathlib\nprint('WMLIB_FROM', pathlib.Path(wmlib.__file__).parent)"))
    before = snapshot(ROOT / "runs") | snapshot(ROOT / "results")
    for var in ("WMLIB_HOME", "WMLIB_RESULTS", "WMLIB_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WMLIB_PROFILE", "smoke")
    monkeypatch.setenv("PYTHONPATH", str(installed) + os.pathsep
                       + os.environ.get("PYTHONPATH", ""))
    monkeypatch.chdir(content)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(content)}}).execute()

    texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
             for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert f"WMLIB_FROM {installed / 'wmlib'}" in texts[-1]
    shown = "\n".join(texts[:-1])
    for machine_path in (str(tmp_path), str(ROOT), str(installed)):
        assert machine_path not in shown, f"an output shows the machine path {machine_path}"
    assert snapshot(ROOT / "runs") | snapshot(ROOT / "results") == before, \
        "the chapter wrote into the checkout instead of the working directory"
    if "02_" in notebook.name or "03_" in notebook.name:
        assert any((content / "runs").iterdir()), "runs/ should be under the working directory"
