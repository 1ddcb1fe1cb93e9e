import json
from pathlib import Path

from wmlib import results_page

REPO_RESULTS = Path(__file__).resolve().parents[1] / "results"


def write(directory: Path, name: str, values: dict, **fields) -> None:
    entry = {"name": name, "values": values, "profile": "quick", "seed": 0, "device": "cpu",
             "wall_time_s": 60.0, "hardware": "2 x Test CPU; no GPU", "commit": "abc1234",
             "date": "2026-01-01T00:00:00", "notes": "", "log": f"{name}.log", **fields}
    (directory / f"{name}.json").write_text(json.dumps(entry))


def rows(page: str) -> dict[str, str]:
    """Each table row of the page by its record's name."""
    return {line.split("]", 1)[0][3:]: line for line in page.splitlines()
            if line.startswith("| [")}


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def test_rows_hold_the_records_numbers(tmp_path):
    write(tmp_path, "ch01_cem_truesim_quick",
          {"planner": "cem", "episodes": 4, "returns": [1.0, 2.0, 3.0, 4.0], "mean": 812.3,
           "std": 3.4},
          wall_time_s=90.0, date="2026-03-04T05:06:07",
          notes="Paper X reports 850 (Someone 2019), cited, not ours.")
    write(tmp_path, "ch04_dreamer_state_final_full",
          {"final_returns": [100.0, 200.0, 300.0], "random_returns": [10.0, 30.0],
           "env_steps": 5000},
          profile="full", wall_time_s=1800.0, date="2025-12-31T23:59:59",
          notes="Final evaluation of our agent.")
    page = results_page.render(tmp_path)
    found = rows(page)
    assert set(found) == {"ch01_cem_truesim_quick", "ch04_dreamer_state_final_full"}

    cem = cells(found["ch01_cem_truesim_quick"])
    assert cem == ["[ch01_cem_truesim_quick](ch01_cem_truesim_quick.json)", "quick",
                   "return 812.3 ± 3.4", "4 episodes", "cpu", "2 x Test CPU; no GPU",
                   "abc1234", "2026-03-04", "1.5"]  # 90 s

    final = cells(found["ch04_dreamer_state_final_full"])
    # mean of 100, 200, 300 is 200; population std sqrt(20000 / 3) = 81.65; random 20 +- 10
    assert final[1:4] == ["full", "final 200.0 ± 81.6; random 20.0 ± 10.0; 5000 env steps",
                          "3 episodes"]
    assert final[-2:] == ["2025-12-31", "30.0"]  # 1800 s

    assert page.index("## Chapter 1") < page.index("ch01_cem") < page.index("## Chapter 2")
    assert "- Paper X reports 850 (Someone 2019), cited, not ours." in page
    assert "`ch04_dreamer_state_final_full`: Final evaluation of our agent." in page
    assert page == results_page.render(tmp_path)  # deterministic


def test_generic_fallback_lists_at_most_six_numbers(tmp_path):
    write(tmp_path, "ch09_something_quick",
          {"label": "x", "flag": True, "a": 3.14159, "b": 2, "c": 0.000123456, "d": 12345.6,
           "e": 1.0, "f": 2.0, "g": 3.0})
    page = results_page.render(tmp_path)
    assert "## Other records" in page
    headline = cells(rows(page)["ch09_something_quick"])[2]
    assert headline == "a 3.142; b 2; c 0.0001235; d 12350; e 1; f 2"  # not g, flag, label


def test_check_fails_on_a_stale_page_and_passes_after_regeneration(tmp_path, capsys):
    write(tmp_path, "ch01_cem_truesim_quick", {"mean": 1.0, "std": 0.5, "episodes": 2})
    args = ["--results", str(tmp_path)]
    assert results_page.main([*args, "--check"]) == 1  # no page yet
    (tmp_path / "README.md").write_text("# Results\n\nstale\n")
    assert results_page.main([*args, "--check"]) == 1
    assert "python -m wmlib.results_page" in capsys.readouterr().err
    assert results_page.main(args) == 0
    assert results_page.main([*args, "--check"]) == 0
    write(tmp_path, "ch01_cem_truesim_quick", {"mean": 2.0, "std": 0.5, "episodes": 2})
    assert results_page.main([*args, "--check"]) == 1


def test_committed_page_is_up_to_date():
    page = (REPO_RESULTS / "README.md").read_text()
    assert page == results_page.render(REPO_RESULTS), (
        "results/README.md is out of date: run `python -m wmlib.results_page`")


def test_every_record_has_a_row_without_machine_paths():
    page = results_page.render(REPO_RESULTS)
    found = rows(page)
    names = sorted(p.stem for p in REPO_RESULTS.glob("*.json"))
    assert names and sorted(found) == names
    home = str(Path.home())
    for line in page.splitlines():
        assert "/work/" not in line and "/home/" not in line
        assert home == "/" or home not in line
