import json
import subprocess
import sys

import pytest

from wmlib.build import build, resolve


def test_info_prints_versions_and_a_rendered_frame():
    r = subprocess.run([sys.executable, "-m", "wmlib", "info"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch" in r.stdout and "test frame (64, 64, 3)" in r.stdout


def test_build_executes_a_chapter_into_a_folder(tmp_path):
    (out,) = build(["1"], profile="smoke", out=tmp_path)
    cells = json.loads(out.read_text())["cells"]
    texts = ["".join(o.get("text", "")) for c in cells if c["cell_type"] == "code"
             for o in c.get("outputs", [])]
    assert any("profile: smoke" in t for t in texts)
    assert not any(o.get("output_type") == "error" for c in cells if c["cell_type"] == "code"
                   for o in c.get("outputs", []))


def test_unknown_chapter_lists_chapters():
    with pytest.raises(FileNotFoundError, match="01_planning"):
        resolve(["99"])


def test_mpc_command_runs_in_smoke(capsys):
    from wmlib.cli import main

    assert main(["mpc", "--planner", "shooting", "--profile", "smoke", "--episodes", "1"]) == 0
    assert "mean return" in capsys.readouterr().out


@pytest.mark.parametrize("agent", ["planet", "dreamer"])
def test_train_command_trains_and_resumes_in_smoke(agent, tmp_path, capsys):
    from wmlib.cli import main

    run_dir = tmp_path / agent
    args = ["train", agent, "--profile", "smoke", "--run-dir", str(run_dir), "--no-progress",
            "--device", "cpu"]
    assert main(args) == 0
    assert (run_dir / "checkpoint.pt").exists() and (run_dir / "log.txt").exists()
    first = (run_dir / "log.txt").read_text()
    assert main(args) == 0  # finished: a rerun only loads the checkpoint
    assert "episode" in first and "device cpu" in first


def test_train_dreamer_from_the_state_with_an_ablation_and_records(tmp_path, monkeypatch, capsys):
    from wmlib.cli import main

    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path / "results"))
    run_dir = tmp_path / "abl"
    assert main(["train", "dreamer", "--state", "--ablation", "categorical+balance",
                 "--profile", "smoke", "--run-dir", str(run_dir), "--no-progress",
                 "--device", "cpu", "--record", "ch04_test"]) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["pixels"] is False and cfg["classes"] == 32 and cfg["kl_alpha"] == 0.8
    entry = json.loads((tmp_path / "results" / "ch04_test.json").read_text())
    assert entry["profile"] == "smoke" and "Dreamer" in entry["notes"]
    assert main(["train", "planet", "--state", "--profile", "smoke"]) == 2
    assert "Dreamer's options" in capsys.readouterr().err


def test_train_soft_bird_records_the_gap_and_a_final_evaluation_beside_random(tmp_path,
                                                                              monkeypatch):
    from wmlib.cli import main

    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path / "results"))
    run_dir = tmp_path / "soft"
    assert main(["train", "bird", "--variant", "soft-bird", "--state", "--profile", "smoke",
                 "--run-dir", str(run_dir), "--no-progress", "--device", "cpu",
                 "--record", "ch06_test", "--final-episodes", "2"]) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["soft_alpha"] == 0.2 and cfg["confidence"] is False and cfg["pixels"] is False
    values = json.loads((tmp_path / "results" / "ch06_test.json").read_text())["values"]
    assert len(values["final_returns"]) == len(values["random_returns"]) == 2
    assert values["gap_columns"] == ["env_steps", "imagined", "real", "abs_gap"]
    assert values["gap_curve"] and len(values["gap_curve"][0]) == 4
    assert main(["train", "bird", "--variant", "execution", "--profile", "smoke"]) == 2
    assert main(["train", "bird", "--ablation", "categorical", "--profile", "smoke"]) == 2


def test_variants_command_trains_two_models_and_resumes(tmp_path, capsys):
    from wmlib.cli import main

    args = ["variants", "--profile", "smoke", "--names", "rnn", "rssm + LO", "--run-dir",
            str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "rnn        seed 0: posterior" in out and "rssm + LO  seed 0" in out
    assert (tmp_path / "rssm_lo_seed0" / "summary.json").exists()
    assert main(args) == 0  # loaded from the run directory: the same numbers

    def numbers(text):  # the errors, without the seconds
        return [line.rsplit(" (", 1)[0] for line in text.splitlines()[-2:]]

    assert numbers(capsys.readouterr().out) == numbers(out)


def test_doom_command_runs_the_dream_pipeline_in_smoke_and_resumes(tmp_path, capsys):
    from wmlib.cli import main

    args = ["doom", "--profile", "smoke", "--run-dir", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "in the real game" in out and "random" in out
    for stage in ("rollouts", "vae", "mdnrnn", "C_dream_tau1"):
        assert (tmp_path / stage).exists(), stage
    assert main(args) == 0  # resumed from the run directory: the same table
    assert capsys.readouterr().out.splitlines()[-3:] == out.splitlines()[-3:]


def test_the_ablation_choices_are_dreamers_variants(capsys):
    from wmlib.agents.dreamer import VARIANTS
    from wmlib.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    usage = capsys.readouterr().out
    choices = usage.split("--ablation {", 1)[1].split("}", 1)[0].split(",")
    assert choices == list(VARIANTS)
