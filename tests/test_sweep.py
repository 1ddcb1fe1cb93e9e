"""Sweeps on Ray (`wmlib.sweep`): a 2 x 2 grid of smoke runs on a local Ray records its four
results, a second call does no work, and each record holds the numbers of the same run
launched by hand with ``python -m wmlib train``."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray")

from wmlib import sweep  # noqa: E402
from wmlib.cli import main  # noqa: E402

VARIANTS, SEEDS = ("gaussian", "categorical"), (0, 1)
GRID = ["sweep", "--agent", "dreamer", "--variants", *VARIANTS, "--state",
        "--seeds", *map(str, SEEDS), "--profiles", "smoke", "--name", "grid", "--num-cpus", "2",
        "--no-progress", "--device", "cpu"]
NAMES = [f"grid_{v}_seed{s}_smoke" for s in SEEDS for v in VARIANTS]
# What differs between two runs of the same numbers: the clock and where they ran.
TIMES = ("mean_update_s", "mean_collect_s_per_episode", "best_eval_return_within_30_min")


def numbers(entry: dict) -> dict:
    """A record's measured values without its timings (the curves without their wall column)."""
    values = {k: v for k, v in entry["values"].items() if k not in TIMES}
    for key in ("train_curve", "eval_curve"):
        values[key] = [[steps, ret] for steps, _, ret in values[key]]
    return values


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WMLIB_HOME", str(home))
        mp.setenv("WMLIB_RESULTS", str(home / "results"))
        assert main(GRID) == 0
        yield home, mp


def test_a_sweep_records_every_run_of_its_grid(swept):
    home, _ = swept
    assert sorted(p.stem for p in (home / "results").glob("*.json")) == sorted(NAMES)
    for name in NAMES:
        run_dir = home / "runs" / "grid" / name.removeprefix("grid_")
        assert (run_dir / "checkpoint.pt").exists() and (run_dir / "log.txt").exists()
        assert list(run_dir.glob("events.out.tfevents.*"))


def test_a_second_call_of_the_same_grid_does_no_work(swept, monkeypatch, capsys):
    home, _ = swept
    checkpoints = {p: p.stat().st_mtime_ns for p in (home / "runs").rglob("checkpoint.pt")}

    def no_ray(*args, **kwargs):
        raise AssertionError("every run is recorded: Ray should not start")

    monkeypatch.setattr(sweep, "start_ray", no_ray)
    assert main(GRID) == 0
    assert capsys.readouterr().out.count("recorded ") == len(NAMES)
    assert {p: p.stat().st_mtime_ns for p in checkpoints} == checkpoints


def test_the_records_equal_those_of_the_same_runs_launched_one_by_one(swept, tmp_path,
                                                                      monkeypatch):
    home, _ = swept
    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path / "results"))
    for seed in SEEDS:
        for variant in VARIANTS:
            name = f"grid_{variant}_seed{seed}_smoke"
            assert main(["train", "dreamer", "--state", "--ablation", variant, "--seed",
                         str(seed), "--profile", "smoke", "--run-dir", str(tmp_path / name),
                         "--record", name, "--threads", "1", "--no-progress",
                         "--device", "cpu"]) == 0
            by_hand = json.loads((tmp_path / "results" / f"{name}.json").read_text())
            swept_ = json.loads((home / "results" / f"{name}.json").read_text())
            assert numbers(swept_) == numbers(by_hand), name
            assert (swept_["seed"], swept_["profile"]) == (seed, "smoke")


def test_unknown_agents_variants_and_addresses_are_refused_before_any_run(tmp_path,
                                                                          monkeypatch, capsys):
    monkeypatch.setenv("WMLIB_HOME", str(tmp_path))
    assert main(["sweep", "--agent", "dreamr"]) == 2
    assert "Unknown agent 'dreamr'" in capsys.readouterr().err
    assert main(["sweep", "--agent", "bird", "--variants", "soft-bird", "soft-brid"]) == 2
    err = capsys.readouterr().err
    assert "Unknown variant 'soft-brid' of bird" in err and "dreamer-fifo" in err
    assert main(["sweep", "ch07_compare"]) == 2
    assert "ch06_compare" in capsys.readouterr().err
    assert main(["sweep", "ch04_ablation", "--profiles", "smoke", "--address",
                 "127.0.0.1:1"]) == 2
    assert "No Ray cluster answers at 127.0.0.1:1" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_the_books_sweeps_run_what_the_shell_scripts_ran():
    """Chapter 4's (5 arms), 5's and 6's sweeps (4 arms) x 3 seeds, with the scripts' options."""
    runs = {k: sweep.plan(s) for k, s in sweep.SWEEPS.items()}
    assert {k: len(v) for k, v in runs.items()} == {
        "ch04_ablation": 15, "ch05_ablation": 12, "ch06_compare": 12}
    assert "ch04_ablation_categorical+trunc_seed2_quick" in {s.name for s in runs["ch04_ablation"]}
    ch04 = runs["ch04_ablation"][0]
    assert ch04.name == "ch04_ablation_gaussian_seed0_quick"
    assert ch04.argv[:2] == ("train", "dreamer") and "--state" in ch04.argv
    assert ch04.argv[ch04.argv.index("--episodes") + 1] == "30"
    ch05 = runs["ch05_ablation"][-1]
    assert ch05.name == "ch05_ablation_augmented_seed2_quick"
    assert ch05.argv[ch05.argv.index("--eval-every") + 1] == "4"
    assert ch05.argv[ch05.argv.index("--init-from") + 1].endswith("runs/dreamer_state_quick")
    ch06 = {s.name: s.argv for s in runs["ch06_compare"]}
    soft = ch06["ch06_soft-bird_seed1_quick"]
    assert soft[:2] == ("train", "bird") and soft[soft.index("--variant") + 1] == "soft-bird"
    assert soft[soft.index("--final-episodes") + 1] == "10"
    assert ch06["ch06_dreamer_seed0_quick"][:2] == ("train", "dreamer")
