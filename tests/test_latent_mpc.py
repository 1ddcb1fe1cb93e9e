"""Chapter 5's planner comparison (wmlib.latent_mpc): every planner acts on one world model,
a reward head for another task of the same physics, and the recorded results."""

from __future__ import annotations

import json

import pytest
import torch

from wmlib.agents.dreamer import STATE_CONFIGS, DreamerAgent
from wmlib.latent_mpc import PLANNERS, ComparisonConfig, make_plan_fn, run_comparison


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dreamer_state")
    DreamerAgent(STATE_CONFIGS["smoke"], run_dir=run_dir, seed=0, device="cpu").train(
        progress=False, echo=False)
    return run_dir


def test_every_planner_runs_on_a_world_model_and_the_comparison_is_recorded(
        world_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path))
    values = run_comparison("smoke", "swingup_sparse", seeds=(0,), record="ch05_test",
                            progress=False, value_steps=3, head_steps=3, max_steps=3,
                            world_dir=world_dir)
    assert [r["planner"] for r in values["rows"]] == list(PLANNERS)
    assert all(r["plan_s"] > 0 and r["steps"] == 3 for r in values["rows"])
    assert values["head_loss"] is not None  # a new reward head for the sparse task
    entry = json.loads((tmp_path / "ch05_test.json").read_text())
    assert entry["profile"] == "smoke" and entry["values"]["random_returns"]
    assert "chapter 4's state Dreamer" in entry["values"]["world_model"]


def test_a_missing_world_model_says_how_to_train_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="train dreamer --state"):
        run_comparison("smoke", "swingup", world_dir=tmp_path / "nothing")


def test_unknown_planner_and_missing_value_are_refused(world_dir):
    agent = DreamerAgent(STATE_CONFIGS["smoke"], run_dir=world_dir, seed=0, device="cpu")
    world = agent.dreamer.world
    with pytest.raises(ValueError, match="cem"):
        make_plan_fn("ilqr", world, world.predict_reward, None, ComparisonConfig())
    with pytest.raises(ValueError, match="value"):
        make_plan_fn("collodreamer", world, world.predict_reward, None, ComparisonConfig())
    plan = make_plan_fn("mppi", world, world.predict_reward, None,
                        ComparisonConfig(horizon=3, candidates=20, top_k=4, iterations=2))
    action = plan(world.dynamics.initial(1))
    assert action.shape == (1,) and torch.isfinite(action).all()
