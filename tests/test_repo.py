"""The repository keeps its promises: paired notebooks in sync, committed outputs, Colab
set-up cells, marked solutions, and environment.yml consistent with pyproject.toml."""

import json
import re
from pathlib import Path

import jupytext
import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "chapters").glob("*/*.ipynb"))


def test_there_are_chapters():
    assert NOTEBOOKS


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_py_twin_are_in_sync(nb):
    twin = nb.with_suffix(".py")
    assert twin.exists(), f"{nb} has no percent-format twin; run: jupytext --sync {nb}"
    a, b = jupytext.read(nb), jupytext.read(twin)
    cells_a = [(c.cell_type, c.source.strip()) for c in a.cells]
    cells_b = [(c.cell_type, c.source.strip()) for c in b.cells]
    assert cells_a == cells_b, f"{nb.name} and {twin.name} drifted; run: jupytext --sync {twin}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_with_outputs_and_colab_cell(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert any(c.get("outputs") for c in code), f"{nb.name} has no outputs"
    first = "".join(code[0]["source"])
    assert "google.colab" in first and "MUJOCO_GL" in first and "pip" in first
    text = "".join("".join(c["source"]) for c in code)
    assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION")
    profile_line = next(("".join(o.get("text", "")) for c in code for o in c.get("outputs", [])
                         if "profile:" in "".join(o.get("text", ""))), "")
    assert re.search(r"profile: (quick|full)", profile_line), \
        f"{nb.name}: committed outputs must come from a quick or full run"


def test_environment_yml_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ;]", d)[0].lower().replace("_", "-") for d in deps}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = {re.split(r"[<>= ]", d)[0].lower().replace("_", "-")
             for d in env["dependencies"] if isinstance(d, str)}
    assert "conda-forge" in env["channels"]
    assert any(re.fullmatch(r"python\s*=\s*3\.1[0-2].*", d) for d in env["dependencies"]
               if isinstance(d, str)), "pin a Python that Colab runs (3.10-3.12)"
    assert any(p.startswith("-e .") for p in pip), "the pip section must install wmlib"
    pip_names = {re.split(r"[<>=\[ ]", p)[0].lower().replace("_", "-") for p in pip}
    listed = (conda | pip_names) - {"python", "pip", "-e"}
    assert names <= listed | {"torch"} and "pytorch" in conda | pip_names | {"torch"}, \
        f"in pyproject but not in environment.yml: {sorted(names - listed)}"
    assert listed - {"pytorch"} <= names | {"pytest", "nbval", "ruff"}, \
        f"in environment.yml but not in pyproject: {sorted(listed - names)}"
