import numpy as np
import pytest

from wmlib.replay import Replay


def episode(ep_id: int, length: int, pixels: bool = False):
    """obs[t] = (episode id, t) so a chunk reveals where it came from."""
    obs = np.stack([np.full(length, ep_id), np.arange(length)], 1).astype(np.float32)
    if pixels:
        obs = np.zeros((length, 3, 8, 8), np.uint8)
    return {"obs": obs, "action": np.zeros((length, 1), np.float32),
            "reward": np.arange(length, dtype=np.float32)}


def test_chunks_never_cross_episode_ends():
    r = Replay(seed=0)
    for i, n in enumerate([5, 9, 3, 12]):
        r.add(episode(i, n))
    batch = r.sample(500, 4)
    assert batch["obs"].shape == (500, 4, 2) and batch["action"].shape == (500, 4, 1)
    ids, times = batch["obs"][..., 0], batch["obs"][..., 1]
    assert (ids == ids[:, :1]).all()                        # one episode per chunk
    assert (np.diff(times, axis=1) == 1).all()              # consecutive steps
    assert not (ids == 2).any()                              # episode of 3 steps is too short


def test_sampling_is_uniform_over_valid_starts():
    r = Replay(seed=1)
    r.add(episode(0, 4))    # 2 starts for length 3
    r.add(episode(1, 10))   # 8 starts
    b = r.sample(20000, 3)
    starts = [(int(i), int(t)) for i, t in b["obs"][:, 0]]
    counts = {s: starts.count(s) for s in set(starts)}
    assert len(counts) == 10
    assert all(abs(c / 20000 - 0.1) < 0.015 for c in counts.values())


def test_capacity_drops_oldest_episodes():
    r = Replay(capacity=20)
    for i in range(5):
        r.add(episode(i, 8))
    assert r.num_steps <= 20 and [int(e["obs"][0, 0]) for e in r.episodes] == [3, 4]


def test_save_load_round_trip_and_incremental_save(tmp_path):
    r = Replay(seed=0)
    r.add(episode(0, 6, pixels=True))
    r.save(tmp_path)
    r.add(episode(1, 7, pixels=True))
    r.save(tmp_path)
    r.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episode_000000.npz",
                                                           "episode_000001.npz"]
    loaded = Replay.load(tmp_path)
    assert len(loaded) == 2 and loaded.num_steps == 13
    for a, b in zip(r.episodes, loaded.episodes):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
            assert a[k].dtype == b[k].dtype
    loaded.add(episode(2, 5, pixels=True))
    loaded.save(tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_bad_episodes_and_requests_are_clear_errors(tmp_path):
    r = Replay()
    with pytest.raises(KeyError, match="missing"):
        r.add({"obs": np.zeros(3)})
    bad = episode(0, 5)
    bad["action"] = bad["action"][:4]
    with pytest.raises(ValueError, match="share their time axis"):
        r.add(bad)
    r.add(episode(0, 5))
    with pytest.raises(ValueError, match="per-step shape"):
        r.add(episode(1, 5, pixels=True))
    with pytest.raises(ValueError, match="No episode holds 6 steps"):
        r.sample(2, 6)
    with pytest.raises(FileNotFoundError):
        Replay.load(tmp_path / "nothing")
