import numpy as np
import pytest
import torch

from wmlib import envs
from wmlib.truesim import TrueSimulator, cartpole_reward


def test_simulated_returns_equal_what_the_environment_pays(cartpole):
    rng = np.random.default_rng(0)
    prefix = rng.uniform(-1, 1, (4, 1)).astype(np.float32)   # start mid-episode
    actions = rng.uniform(-1, 1, (3, 6, 1)).astype(np.float32)
    cartpole.reset(seed=5)
    for a in prefix:
        cartpole.step(a)
    predicted = TrueSimulator(cartpole, threads=2).returns(torch.as_tensor(actions))
    for j in range(3):                                        # replay each in a fresh env
        env = envs.make("dmc:cartpole-swingup", pixels=False)
        env.reset(seed=5)
        for a in prefix:
            env.step(a)
        paid = sum(env.step(a)[1] for a in actions[j])
        assert predicted[j].item() == pytest.approx(paid, rel=1e-5, abs=1e-6)


def test_vectorised_reward_matches_dm_control(cartpole):
    cartpole.reset(seed=2)
    physics = cartpole.unwrapped.physics
    task = cartpole.unwrapped._env.task
    for a in np.random.default_rng(1).uniform(-1, 1, (10, 1)):
        cartpole.step(a.astype(np.float32))
        ours = cartpole_reward(physics.data.qpos.copy(), physics.data.qvel.copy(),
                               physics.data.ctrl.copy())
        assert ours == pytest.approx(task.get_reward(physics))


def test_unsupported_task_is_a_clear_error():
    env = envs.make("dmc:cheetah-run", pixels=False)
    with pytest.raises(ValueError, match="rewards for .*cartpole"):
        TrueSimulator(env)


def _put_finger_on_target(physics) -> None:
    """Inverse kinematics of the two-link arm (links 0.12, 0.12): joint angles that place the
    finger on the target (elbow-down solution)."""
    x, y = physics.named.model.geom_pos["target", :2]
    l1 = l2 = 0.12
    c2 = np.clip((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1, 1)
    q2 = np.arccos(c2)
    q1 = np.arctan2(y, x) - np.arctan2(l2 * np.sin(q2), l1 + l2 * np.cos(q2))
    physics.named.data.qpos[["shoulder", "wrist"]] = [q1, q2]
    physics.named.data.qvel[:] = 0
    physics.forward()


def test_sparse_reacher_reward_is_zero_off_target_and_matches_dm_control():
    """reacher-easy pays exactly 0 unless the finger touches the target, 1 when it does; our
    vectorised reward agrees with dm_control's task on random states and on the target."""
    env = envs.make("dmc:reacher-easy", pixels=False)
    env.reset(seed=3)
    dmc = env.unwrapped
    physics, task = dmc.physics, dmc._env.task
    reward = TrueSimulator(env, threads=1).reward_fn
    rng = np.random.default_rng(0)
    paid = []
    for _ in range(200):                     # random arm poses: almost all off the target
        physics.named.data.qpos[["shoulder", "wrist"]] = rng.uniform(-np.pi, np.pi, 2)
        physics.forward()
        ours = float(reward(physics.data.qpos[None].copy(), None, None)[0])
        assert ours == task.get_reward(physics)
        paid.append(ours)
    assert set(paid) <= {0.0, 1.0} and paid.count(0.0) > 150
    _put_finger_on_target(physics)
    assert task.get_reward(physics) == 1.0
    assert float(reward(physics.data.qpos[None].copy(), None, None)[0]) == 1.0


def test_cem_with_true_dynamics_finds_the_sparse_reward_random_actions_miss():
    """On reacher-easy (reward only inside the target), CEM planning with the true simulator
    reaches the target within 30 decisions from a start where random actions earn nothing."""
    from wmlib.agents.mpc import MPCConfig, true_sim_policy
    from wmlib.rollout import random_policy, run_episode

    env = envs.make("dmc:reacher-easy", pixels=False, action_repeat=4)
    seed = 1
    _, rand = run_episode(env, random_policy(env, seed=seed), seed=seed, max_steps=30)
    cfg = MPCConfig(env_id="dmc:reacher-easy", horizon=10, candidates=200, top_k=20,
                    iterations=4)
    _, cem = run_episode(env, true_sim_policy(env, "cem", cfg, seed), seed=seed, max_steps=30)
    assert rand["return"] == 0.0
    assert cem["return"] > 4.0               # at least one decision (4 steps) on the target
