import json

from wmlib import results


def test_record_keeps_provenance(tmp_path):
    path = results.record("x", {"mean": 1.0}, profile="quick", seed=3, wall_time_s=12.34,
                          log="episode 0: 1.0", directory=tmp_path)
    entry = json.loads(path.read_text())
    for key in ("profile", "seed", "hardware", "commit", "wall_time_s", "date", "log"):
        assert key in entry
    assert entry["values"] == {"mean": 1.0} and entry["wall_time_s"] == 12.3
    assert (tmp_path / "x.log").read_text() == "episode 0: 1.0"


def test_load_returns_the_recorded_entries_matching_a_pattern(tmp_path):
    for name in ("ch04_a_seed1_quick", "ch04_a_seed0_quick", "ch04_a_seed0_smoke"):
        results.record(name, {"name": name}, profile="quick", seed=0, wall_time_s=1.0,
                       directory=tmp_path)
    found = results.load("ch04_a_*_quick", directory=tmp_path)
    assert [e["values"]["name"] for e in found] == ["ch04_a_seed0_quick", "ch04_a_seed1_quick"]
    assert results.load("nothing_*", directory=tmp_path) == []
