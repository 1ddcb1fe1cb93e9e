"""Replay: whole episodes stored compactly, sampled as B x T chunks.

An episode is a dict of arrays that share their first (time) axis, aligned as in
danijar/dreamer: index ``t`` holds the observation ``obs[t]``, the action that *led to it*
``action[t]`` and the reward received on that transition ``reward[t]`` (index 0 holds the first
observation with a zero action and zero reward). A chunk is then a plain slice of every array.
Pixels stay ``uint8`` (a 64x64 frame is 12 KiB), so a million frames fit in about 12 GiB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REQUIRED = ("obs", "action", "reward")


class Replay:
    """Episode storage with uniform sampling of chunks that never cross an episode's end.

    ``capacity`` counts steps; when it is exceeded the oldest episodes are dropped.
    """

    def __init__(self, capacity: int = 1_000_000, seed: int | None = None):
        self.capacity = capacity
        self.episodes: list[dict[str, np.ndarray]] = []
        self._saved = 0  # episodes ever added that were already written by save()
        self._added = 0  # episodes ever added
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.episodes)

    @property
    def num_steps(self) -> int:
        return sum(len(ep["reward"]) for ep in self.episodes)

    def add(self, episode: dict[str, np.ndarray]) -> None:
        """Add one finished episode (arrays of equal length along axis 0)."""
        missing = [k for k in REQUIRED if k not in episode]
        if missing:
            raise KeyError(f"An episode needs the keys {REQUIRED}; missing {missing}.")
        episode = {k: np.asarray(v) for k, v in episode.items()}
        lengths = {k: len(v) for k, v in episode.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"Episode arrays must share their time axis, got lengths {lengths}. "
                             "Align them as obs[t], action[t] (that led to obs[t]), reward[t].")
        if self.episodes:
            ref = self.episodes[0]
            for k, v in episode.items():
                if k in ref and (v.shape[1:] != ref[k].shape[1:] or v.dtype != ref[k].dtype):
                    raise ValueError(
                        f"Episode key {k!r} has per-step shape {v.shape[1:]} and dtype {v.dtype}, "
                        f"but this replay holds {ref[k].shape[1:]} and {ref[k].dtype}. Use one "
                        "replay per environment and observation type.")
        self.episodes.append(episode)
        self._added += 1
        while self.num_steps > self.capacity and len(self.episodes) > 1:
            self.episodes.pop(0)

    def sample(self, batch_size: int, length: int) -> dict[str, np.ndarray]:
        """``batch_size`` chunks of ``length`` consecutive steps, each from one episode.

        Every valid start is equally likely (episodes are weighted by their number of starts).
        """
        starts = np.array([max(len(ep["reward"]) - length + 1, 0) for ep in self.episodes])
        if starts.sum() == 0:
            longest = max((len(ep["reward"]) for ep in self.episodes), default=0)
            raise ValueError(f"No episode holds {length} steps (longest: {longest}); "
                             "collect more data or sample shorter chunks.")
        eps = self.rng.choice(len(self.episodes), size=batch_size, p=starts / starts.sum())
        chunks = []
        for i in eps:
            t = self.rng.integers(0, starts[i])
            chunks.append({k: v[t:t + length] for k, v in self.episodes[i].items()})
        return {k: np.stack([c[k] for c in chunks]) for k in chunks[0]}

    def save(self, directory: str | Path) -> None:
        """Write episodes not yet saved, one compressed ``.npz`` each (cheap to call often)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        first_unsaved = len(self.episodes) - (self._added - self._saved)
        for n, ep in enumerate(self.episodes[max(first_unsaved, 0):], start=self._saved):
            np.savez_compressed(directory / f"episode_{n:06d}.npz", **ep)
        self._saved = self._added

    @classmethod
    def load(cls, directory: str | Path, capacity: int = 1_000_000,
             seed: int | None = None) -> Replay:
        """Read every ``episode_*.npz`` of ``directory`` in order."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"No replay directory at {directory}.")
        replay = cls(capacity, seed)
        for f in sorted(directory.glob("episode_*.npz")):
            with np.load(f) as data:
                replay.add({k: data[k] for k in data.files})
        replay._saved = replay._added
        return replay
