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
