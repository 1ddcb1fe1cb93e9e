"""Course assignments from the chapters: student versions and automatic grading, with nbgrader.

The chapters are the instructor versions. Their exercise cells carry jupytext tags (in the
``.py`` files: ``# %% tags=["solution"]``):

- ``solution``: code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes a stub that
  raises ``NotImplementedError``;
- ``tests``: an autograded cell: visible asserts, and hidden ones between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` that the student version drops and the
  grader puts back; worth ``points-N`` (a tag; 1 point without one);
- ``answer``: a markdown model answer to a "think" question, replaced by "YOUR ANSWER HERE" and
  graded by hand (nbgrader's formgrader, or by reading), worth ``points-N``.

``generate`` turns these tags into nbgrader's cell metadata and runs nbgrader's
``generate_assignment`` (solutions stubbed, hidden tests removed, outputs cleared);
``grade`` runs nbgrader's ``autograde`` on a folder of submissions, in the smoke profile by
default, and returns the score table. nbgrader keeps its gradebook in a SQLite file inside the
course folder: no server, no JupyterHub.

    python -m wmlib assignments generate --out course          # all chapters
    python -m wmlib assignments grade submissions/ --out course  # submissions/<student>/<nb>.ipynb
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from unittest import mock

KINDS = ("solution", "tests", "answer")
EXERCISE = re.compile(r"\*\*Exercise (\d+)")


@dataclass
class Score:
    """One row of the score table: autograded points, and the points still to grade by hand."""

    student: str
    assignment: str
    score: float
    max_score: float
    to_grade: float
    errors: str = ""


def _require_nbgrader():
    try:
        import nbgrader  # noqa: F401
    except ImportError as e:  # pragma: no cover - nbgrader is a dev dependency
        raise ImportError("Assignments need nbgrader: pip install 'nbgrader==0.9.6' "
                          "(or pip install -e '.[dev]' in the book's checkout).") from e


def _points(tags: list[str]) -> float:
    for t in tags:
        if t.startswith("points-"):
            return float(t.split("-", 1)[1])
    return 1.0


def mark(nb) -> dict[str, float]:
    """Give every tagged exercise cell nbgrader's metadata (in place).

    The grade ids name the exercise (``ex2-tests``) from the last "**Exercise N" heading above
    the cell. Returns the points per grade id."""
    exercise, points = "0", {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = EXERCISE.findall(cell.source)
            if found:
                exercise = found[-1]
        tags = cell.metadata.get("tags", [])
        kinds = [k for k in KINDS if k in tags]
        if not kinds:
            if "BEGIN SOLUTION" in cell.source or "HIDDEN TESTS" in cell.source:
                raise ValueError("A cell holds solution or hidden-test markers but no "
                                 f"'solution'/'tests' tag:\n{cell.source[:300]}")
            continue
        if len(kinds) > 1:
            raise ValueError(f"A cell has several exercise tags {kinds}:\n{cell.source[:300]}")
        kind = kinds[0]
        if kind == "answer" and cell.cell_type != "markdown":
            raise ValueError(f"An 'answer' cell must be markdown:\n{cell.source[:300]}")
        grade_id, n = f"ex{exercise}-{kind}", 2
        while grade_id in points:
            grade_id, n = f"ex{exercise}-{kind}{n}", n + 1
        meta = {"schema_version": 3, "grade_id": grade_id, "task": False,
                "solution": kind in ("solution", "answer"), "grade": kind in ("tests", "answer"),
                "locked": kind == "tests"}
        if meta["grade"]:
            meta["points"] = _points(tags)
        points[grade_id] = meta.get("points", 0.0)
        cell.metadata["nbgrader"] = meta
    if not any(k.endswith("tests") for k in points):
        raise ValueError("No cell tagged 'tests': nothing to grade in this notebook.")
    return points


def _api(course: Path, timeout: int = 900):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(course)
    config.Execute.timeout = timeout  # per cell; the smoke profile needs seconds
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def _checked(result: dict, what: str) -> dict:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed:\n{result.get('error') or ''}\n"
                           f"{result.get('log') or ''}")
    return result


def generate(chapters: list[str] | None = None, out: str | Path = "course") -> dict[str, Path]:
    """Write an nbgrader course folder under ``out``: ``source/`` (the instructor versions, with
    nbgrader metadata), ``release/`` (the student versions) and the gradebook; copy the student
    notebooks to ``out/student/``. Returns the student notebook of each assignment."""
    _require_nbgrader()
    import nbformat

    from wmlib.build import resolve

    course = Path(out).resolve()
    (course / "student").mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text("# nbgrader's settings for the book's course folder "
                          "(python -m wmlib assignments).\nc = get_config()  # noqa: F821\n"
                          "c.Execute.timeout = 900\n")
    api = _api(course)
    students = {}
    for nb_path in resolve(chapters or []):
        name = nb_path.stem
        nb = nbformat.read(nb_path, as_version=4)
        mark(nb)
        src = course / "source" / name
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        nbformat.write(nb, src / f"{name}.ipynb")
        _checked(api.generate_assignment(name, force=True, create=True),
                 f"generate_assignment {name}")
        students[name] = course / "student" / f"{name}.ipynb"
        shutil.copy(course / "release" / name / f"{name}.ipynb", students[name])
    return students


def grade(submissions: str | Path, out: str | Path = "course", profile: str = "smoke",
          csv_path: str | Path | None = None) -> list[Score]:
    """Autograde ``submissions/<student>/<notebook>.ipynb`` with nbgrader in ``profile``.

    Generates the assignments a submission names if the course folder lacks them. Writes the
    table to ``csv_path`` (default ``out/scores.csv``) and returns it."""
    _require_nbgrader()
    from wmlib.profiles import check_profile

    check_profile(profile)
    course, submissions = Path(out).resolve(), Path(submissions).resolve()
    found = sorted(submissions.glob("*/*.ipynb"))
    if not found:
        raise FileNotFoundError(f"No submissions in {submissions}: expected "
                                "<student>/<chapter notebook>.ipynb, e.g. "
                                "alice/04_dreamer.ipynb.")
    missing = sorted({p.stem for p in found if not (course / "source" / p.stem).exists()})
    if missing:
        generate(missing, course)
    api = _api(course)
    # the kernels nbgrader starts inherit the profile; the caller's environment is restored after
    env = {"WMLIB_PROFILE": profile, "WMLIB_HEADLESS": os.environ.get("WMLIB_HEADLESS", "1")}
    with mock.patch.dict(os.environ, env):
        rows = [_autograde(api, course, nb) for nb in found]
    path = Path(csv_path) if csv_path else course / "scores.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    return rows


def _autograde(api, course: Path, nb: Path) -> Score:
    """Copy one submission into the course folder, autograde it, read its row from the
    gradebook."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    student, name = nb.parent.name, nb.stem
    dest = course / "submitted" / student / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    submitted = nbformat.read(nb, as_version=4)
    if not any("nbgrader" in c.metadata for c in submitted.cells):
        mark(submitted)  # worked in the book's chapter itself: its tags give the grade ids
    nbformat.write(submitted, dest / nb.name)
    result = api.autograde(name, student, force=True, create=True)
    errors = "" if result.get("success") else (result.get("error") or "autograde failed")
    score = max_score = to_grade = 0.0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # read inside its session
        try:
            grades = [(g.cell.cell_type, g.score, g.max_score, g.needs_manual_grade)
                      for n in gb.find_submission(name, student).notebooks for g in n.grades]
        except MissingEntry:
            grades, errors = [], errors or "no grades recorded"
    for cell_type, points, max_points, by_hand in grades:
        if cell_type == "code":  # an autograded test cell
            score += points
            max_score += max_points
        elif by_hand:  # a written answer, left to the instructor
            to_grade += max_points
    return Score(student, name, score, max_score, to_grade, errors.strip()[-300:])


def table(rows: list[Score]) -> str:
    """The score table as aligned text."""
    lines = [f"{'student':<16}{'assignment':<20}{'autograded':>12}{'to grade by hand':>18}"]
    for r in rows:
        lines.append(f"{r.student:<16}{r.assignment:<20}{f'{r.score:g}/{r.max_score:g}':>12}"
                     f"{r.to_grade:>18g}" + (f"  ({r.errors.splitlines()[-1]})" if r.errors
                                             else ""))
    return "\n".join(lines)
