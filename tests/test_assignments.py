"""Course assignments (wmlib.assignments, nbgrader): the student versions hold no solution and
fail their tests; the chapters pass them; the grader gives full, partial and no marks."""

import re

import nbformat
import pytest

from wmlib import assignments
from wmlib.build import chapter_notebooks

CHAPTERS = chapter_notebooks()


def _cell(source, cell_type="code", tags=()):
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    cell = make(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_mark_gives_nbgrader_metadata_named_after_the_exercise():
    nb = nbformat.v4.new_notebook(cells=[
        _cell("**Exercise 2 (x).** Write f.", "markdown"),
        _cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
              tags=["solution"]),
        _cell("assert f() == 1", tags=["tests", "points-3"]),
        _cell("assert f() != 2", tags=["tests"]),
        _cell("**Exercise 3 (think).** Why?", "markdown"),
        _cell("Because.", "markdown", tags=["answer"]),
    ])
    points = assignments.mark(nb)
    assert points == {"ex2-solution": 0.0, "ex2-tests": 3.0, "ex2-tests2": 1.0,
                      "ex3-answer": 1.0}
    meta = [c.metadata.get("nbgrader") for c in nb.cells]
    assert meta[0] is None
    assert meta[1]["solution"] and not meta[1]["grade"] and not meta[1]["locked"]
    assert meta[2]["grade"] and meta[2]["locked"] and not meta[2]["solution"]
    assert meta[5]["grade"] and meta[5]["solution"] and meta[5]["points"] == 1.0


@pytest.mark.parametrize("cells, message", [
    ([_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "no 'solution'/'tests' tag"),
    ([_cell("x = 1", tags=["solution", "tests"])], "several exercise tags"),
    ([_cell("x = 1", tags=["answer"])], "must be markdown"),
    ([_cell("x = 1", tags=["solution"])], "No cell tagged 'tests'"),
])
def test_mark_rejects_badly_tagged_notebooks(cells, message):
    with pytest.raises(ValueError, match=message):
        assignments.mark(nbformat.v4.new_notebook(cells=cells))


def _solution_lines(nb):
    """The lines between the markers of every solution cell, and every model answer, that do
    not also appear in the cells' visible parts."""
    hidden, visible = [], set()
    for c in nb.cells:
        tags = c.metadata.get("tags", [])
        if "answer" in tags:
            hidden += [line.strip() for line in c.source.splitlines() if len(line.strip()) > 20]
        if "solution" in tags or "tests" in tags:
            for region in re.findall(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1",
                                     c.source, re.S):
                hidden += [line.strip() for line in region[1].splitlines()
                           if len(line.strip()) > 12]
        if "answer" not in tags:
            shown = re.sub(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n.*?### END \1", "", c.source,
                           flags=re.S)
            visible |= {line.strip() for line in shown.splitlines()}
    return [line for line in hidden if line not in visible]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    return out, assignments.generate(None, out)


def test_every_chapter_has_two_graded_exercises_with_hidden_tests():
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        tests = [c for c in nb.cells if "tests" in c.metadata.get("tags", [])]
        graded = {g for g in assignments.mark(nb) if g.endswith("tests")}
        assert len(graded) >= 2, path.name
        for c in tests:
            visible = c.source.split("### BEGIN HIDDEN TESTS")[0]
            assert "assert" in visible, (path.name, c.source[:200])
            assert "### BEGIN HIDDEN TESTS" in c.source, (path.name, c.source[:200])


def test_student_versions_hold_no_solution_and_no_outputs(course):
    out, students = course
    assert sorted(students) == sorted(p.stem for p in CHAPTERS)
    for path in CHAPTERS:
        source = nbformat.read(path, as_version=4)
        text = students[path.stem].read_text()
        student = nbformat.read(students[path.stem], as_version=4)
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
            assert marker not in text, (path.name, marker)
        lines = {line.strip() for c in student.cells for line in c.source.splitlines()}
        for line in _solution_lines(source):
            assert line not in lines, (path.name, line)
        assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
        stubs = [c for c in student.cells if c.metadata.get("nbgrader", {}).get("solution")
                 and c.cell_type == "code"]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


@pytest.mark.slow
def test_grader_gives_full_partial_and_no_marks(course, tmp_path):
    """Every chapter, executed by nbgrader in the smoke profile: the chapter itself (solved)
    gets every autograded point, the student version none, a half-solved one some."""
    out, students = course
    subs = tmp_path / "submissions"
    partial = CHAPTERS[-1].stem
    for path in CHAPTERS:
        for who, nb_path in (("solved", path), ("blank", students[path.stem])):
            (subs / who).mkdir(parents=True, exist_ok=True)
            (subs / who / path.name).write_bytes(nb_path.read_bytes())
    # half-solved: the student version of the last chapter with its first exercise filled in
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(
        out / "source" / partial / f"{partial}.ipynb", as_version=4).cells
        if "nbgrader" in c.metadata}
    nb = nbformat.read(students[partial], as_version=4)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-solution":
            c.source = solved["ex1-solution"]
    (subs / "half").mkdir()
    nbformat.write(nb, subs / "half" / f"{partial}.ipynb")

    rows = {(r.student, r.assignment): r for r in assignments.grade(subs, out)}
    assert (out / "scores.csv").exists()
    for path in CHAPTERS:
        full, blank = rows["solved", path.stem], rows["blank", path.stem]
        assert full.max_score >= 2 and full.score == full.max_score, full
        assert full.to_grade > 0, full  # the model answers wait for the instructor
        assert blank.score == 0 and blank.max_score == full.max_score, blank
    half = rows["half", partial]
    assert 0 < half.score < half.max_score, half


def test_grading_an_empty_folder_says_what_is_expected(tmp_path, capsys):
    from wmlib.cli import main

    assert main(["assignments", "grade", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert "<student>/<chapter notebook>.ipynb" in capsys.readouterr().err
    assert main(["assignments", "grade", "--out", str(tmp_path / "c")]) == 2
