"""Same seed, same run: the smoke PlaNet agent and the smoke World Models pipeline, run twice
with one seed, give identical returns and losses; another seed gives others."""

from __future__ import annotations

import dataclasses

from wmlib.agents import planet
from wmlib.agents import world_models as wm

TINY_WM = dict(rollouts=2, rollout_steps=12, rnn_steps=3, generations=2, zonly_generations=1,
               dream_generations=2, dream_steps=5, train_max_steps=8, eval_max_steps=8)


def planet_run(seed: int, run_dir) -> dict:
    agent = planet.train("smoke", run_dir=run_dir, seed=seed, progress=False, device="cpu")
    h = agent.history
    episodes = [ep["reward"].tolist() for ep in agent.replay.episodes]
    return {"return": h["return"][1], "eval": h["eval_return"][1], "loss": h["loss"][1],
            "episodes": episodes}


def test_planet_smoke_runs_reproduce_with_a_seed_and_differ_with_another(tmp_path):
    a = planet_run(0, tmp_path / "a")
    b = planet_run(0, tmp_path / "b")
    c = planet_run(1, tmp_path / "c")
    assert a == b
    assert a["episodes"] != c["episodes"] and a["loss"] != c["loss"]


def world_models_run(seed: int, run_dir) -> dict:
    s = wm.run("smoke", run_dir=run_dir, record=False, progress=False, verbose=False,
               device="cpu", seed=seed, **TINY_WM)
    return {"returns": s["returns"], "series": wm.encode_dataset(
        dataclasses.replace(wm.CONFIGS["smoke"], seed=seed, **TINY_WM), run_dir)["mu"].tolist()}


def test_world_models_smoke_runs_reproduce_with_a_seed_and_differ_with_another(tmp_path):
    a = world_models_run(0, tmp_path / "a")
    b = world_models_run(0, tmp_path / "b")
    c = world_models_run(1, tmp_path / "c")
    assert a == b
    assert a["series"] != c["series"]
