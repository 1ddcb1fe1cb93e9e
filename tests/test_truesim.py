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
    env = envs.make("dmc:reacher-easy", pixels=False)
    with pytest.raises(ValueError, match="rewards for .*cartpole"):
        TrueSimulator(env)
