"""Where the book writes: never inside the installed package; the checkout's runs/ and
results/ inside a checkout, the working directory's elsewhere (Colab's /content)."""

from __future__ import annotations

from pathlib import Path

from wmlib import paths, results

ROOT = Path(__file__).resolve().parent.parent


def test_home_is_the_checkout_inside_it_and_the_working_directory_outside(tmp_path,
                                                                           monkeypatch):
    monkeypatch.delenv("WMLIB_HOME", raising=False)
    monkeypatch.delenv("WMLIB_RESULTS", raising=False)
    monkeypatch.chdir(ROOT / "chapters" / "01_planning")
    assert paths.home() == ROOT
    assert paths.runs_dir("x") == ROOT / "runs" / "x"
    monkeypatch.chdir(tmp_path)
    assert paths.home() == tmp_path
    assert paths.results_dir() == tmp_path / "results"
    monkeypatch.setenv("WMLIB_HOME", str(tmp_path / "book"))
    assert paths.runs_dir() == tmp_path / "book" / "runs"
    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path / "elsewhere"))
    assert paths.results_dir() == tmp_path / "elsewhere"


def test_results_are_written_under_the_working_directory_outside_a_checkout(tmp_path,
                                                                            monkeypatch):
    monkeypatch.delenv("WMLIB_HOME", raising=False)
    monkeypatch.delenv("WMLIB_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    path = results.record("probe", {"x": 1}, profile="smoke", seed=0, wall_time_s=0.1, log="l")
    assert path == tmp_path / "results" / "probe.json"
    assert (tmp_path / "results" / "probe.log").read_text() == "l"


def test_world_models_runs_default_to_the_home_runs_folder(tmp_path, monkeypatch):
    from wmlib.agents import world_models as wm

    monkeypatch.delenv("WMLIB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert wm.default_run_dir("quick") == tmp_path / "runs" / "ch02_quick"


def test_show_never_prints_a_machine_path(tmp_path, monkeypatch):
    monkeypatch.delenv("WMLIB_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.show(tmp_path / "runs" / "planet_quick") == "runs/planet_quick"
    assert paths.show("/somewhere/else/file.json") == "file.json"
