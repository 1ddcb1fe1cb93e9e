"""Chapter 5's planner comparison (wmlib.latent_mpc): every planner acts on one world model,
a reward head for another task of the same physics, and the recorded results."""

from __future__ import annotations

import json

import pytest
import torch

from wmlib.agents.dreamer import STATE_CONFIGS, DreamerAgent
from wmlib.latent_mpc import (
    EQUAL_TIME,
    PLANNERS,
    ComparisonConfig,
    keep_best,
    make_plan_fn,
    run_comparison,
)
from wmlib.planners import random_shooting


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
    assert "chapter 4's" in entry["values"]["world_model"]
    plans = entry["values"]["imagined_plans"]["0"]
    assert set(plans) == set(PLANNERS)
    H = entry["values"]["config"]["horizon"]
    assert all(len(p["rewards"]) == H and len(p["obs"]) == H + 1 for p in plans.values())


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


def test_the_sparse_reacher_comparison_runs_on_a_model_of_its_own_task(tmp_path, monkeypatch):
    """reacher_easy plans on a Dreamer trained on reacher-easy itself (no new reward head),
    with the equal-time planners; the imagined plans decode to reacher's 6-number state."""
    import dataclasses

    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path))
    run_dir = tmp_path / "reacher"
    cfg = dataclasses.replace(STATE_CONFIGS["smoke"], env_id="dmc:reacher-easy", obs_norm=True)
    DreamerAgent(cfg, run_dir=run_dir, seed=0, device="cpu").train(progress=False, echo=False)
    values = run_comparison("smoke", "reacher_easy", seeds=(0,), progress=False, value_steps=2,
                            max_steps=2, world_dir=run_dir)
    assert [r["planner"] for r in values["rows"]] == list(EQUAL_TIME)
    assert values["head_loss"] is None and values["env_id"] == "dmc:reacher-easy"
    assert all(len(p["obs"][0]) == 6 for p in values["imagined_plans"]["0"].values())


def test_unknown_task_is_refused_with_the_known_ones(world_dir):
    with pytest.raises(ValueError, match="reacher_easy"):
        run_comparison("smoke", "reacher_hard", world_dir=world_dir)


def test_keep_best_remembers_the_sequence_random_shooting_acts_on():
    """The best sequence `keep_best` saw is the one whose first action random shooting
    returns, and its return is the best of every candidate scored."""
    target = torch.tensor([0.3, -0.5])
    scored = []

    def objective(actions):                       # [J, H, A] -> [J], best at a = target
        returns = -(actions - target).pow(2).sum((1, 2))
        scored.append(returns)
        return returns
    recording, best = keep_best(objective)
    gen = torch.Generator().manual_seed(0)
    action = random_shooting(recording, 4, 2, candidates=50, generator=gen)
    assert torch.equal(best["actions"][0], action)
    assert best["return"] == pytest.approx(torch.cat(scored).max().item())
