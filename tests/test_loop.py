"""The training loop shared by every agent (`wmlib.loop`): the same seeded smoke runs give
the same numbers as the code they were recorded with.

``tests/data/loop_smoke_seed0.json`` holds, for each agent, the history of a smoke run on
seed 0 (losses, returns, environment steps, evaluation returns and the imagination gap; not
the timings) and a one-episode final evaluation, written by `smoke_numbers` before the loop
moved out of `wmlib.agents.planet`. A loop that drew its random numbers in another order
(seed episodes, collection, updates, evaluation) gives other returns and losses and fails.
Regenerate it only when a change of the numbers is intended:
``python tests/test_loop.py`` (it rewrites the file).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "data" / "loop_smoke_seed0.json"
TIMINGS = ("wall_s", "train_s", "collect_s", "eval_s")
# (module, train's keyword arguments): PlaNet from pixels and the three agents built on it.
RUNS = {
    "planet": ("planet", {}),
    "dreamer_state": ("dreamer", {"state": True}),
    "collodreamer_state": ("collodreamer", {"state": True}),
    "soft_bird_state": ("bird", {"state": True, "variant": "soft-bird"}),
}


def smoke_numbers(name: str, run_dir: Path) -> dict:
    """The numbers of one smoke run of ``RUNS[name]`` on seed 0, on the CPU."""
    import importlib

    module, kwargs = RUNS[name]
    agents = importlib.import_module(f"wmlib.agents.{module}")
    from wmlib.loop import final_evaluation

    agent = agents.train("smoke", run_dir=run_dir, seed=0, progress=False, device="cpu",
                         **kwargs)
    history = {k: [list(x) for x in v] for k, v in agent.history.data.items()
               if k not in TIMINGS}
    return {"history": history, "final": final_evaluation(agent, episodes=1)}


def close(a, b, path="") -> None:
    """``a == b`` for nested lists and dicts of numbers, up to float32's rounding."""
    assert type(a) is type(b) or {type(a), type(b)} <= {int, float}, path
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), path
        for k in a:
            close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, f"{path}[{i}]")
    else:
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5), f"{path}: {a} != {b}"


@pytest.mark.parametrize("name", list(RUNS))
def test_a_seeded_smoke_run_gives_the_recorded_numbers(name, tmp_path):
    expected = json.loads(FIXTURE.read_text())[name]
    close(smoke_numbers(name, tmp_path / name), expected, name)


def scalars_in(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the TensorBoard event files in ``run_dir``, read back by TensorBoard's
    own reader: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_a_run_writes_live_curves_for_tensorboard_and_a_resumed_run_appends(tmp_path):
    from wmlib.agents import dreamer

    run_dir = tmp_path / "dreamer"
    agent = dreamer.train("smoke", run_dir=run_dir, seed=0, progress=False, device="cpu",
                          state=True, episodes=2, eval_every=2)
    assert list(run_dir.glob("events.out.tfevents.*")), "no event files beside log.txt"
    curves = scalars_in(run_dir)
    for tag in ("loss", "recon", "kl", "actor_loss", "value_loss", "return", "eval_return",
                "gap_abs", "gap_imagined", "gap_real"):
        assert tag in curves, f"{tag} missing from {sorted(curves)}"
    # the same numbers as the history, at the same rounds (float32 in the event files)
    for tag in ("loss", "return", "eval_return", "gap_abs"):
        steps, values = agent.history[tag]
        assert [s for s, _ in curves[tag]] == steps
        assert [v for _, v in curves[tag]] == pytest.approx(values, rel=1e-6)
    # A session killed after logging round 2 but before its checkpoint left a stale point.
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir)) as killed:
        killed.add_scalar("return", -1e6, 2)
    # Resumed for two more rounds: the curves continue from the checkpoint, each round once.
    again = dreamer.train("smoke", run_dir=run_dir, seed=0, progress=False, device="cpu",
                          state=True, episodes=4, eval_every=2)
    curves = scalars_in(run_dir)
    assert curves["return"] == [(s, pytest.approx(v)) for s, v in zip(*again.history["return"])]
    assert [s for s, _ in curves["return"]] == [0, 1, 2, 3]
    assert [s for s, _ in curves["eval_return"]] == [1, 3]


if __name__ == "__main__":
    import os
    import tempfile

    import torch

    os.environ.setdefault("WMLIB_PROFILE", "smoke")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        numbers = {name: smoke_numbers(name, Path(tmp) / name) for name in RUNS}
    FIXTURE.write_text(json.dumps(numbers, indent=1) + "\n")
    print(f"wrote {FIXTURE}")
