"""Tests of wmlib.rollout.run_episode on a hand-made environment whose numbers are known."""

import gymnasium as gym
import numpy as np

from wmlib.rollout import run_episode


class Counter(gym.Env):
    """obs = the step count; reward = the action; the episode ends after 6 steps."""

    observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t], np.float32), float(action[0]), self.t >= 6, False, {}


def test_the_episode_is_aligned_as_replay_expects():
    # Action 0.1 * (obs + 1): the action that led to obs[t] is 0.1 * t, and so is reward[t].
    episode, info = run_episode(Counter(), lambda obs: 0.1 * (obs + 1), seed=0)
    np.testing.assert_allclose(episode["obs"][:, 0], np.arange(7))
    np.testing.assert_allclose(episode["action"][:, 0], 0.1 * np.arange(7), rtol=1e-6)
    np.testing.assert_allclose(episode["reward"], 0.1 * np.arange(7), rtol=1e-6)
    assert info["steps"] == 6 and info["terminated"]
    assert abs(info["return"] - 2.1) < 1e-5


def test_max_steps_stop_and_keep_obs():
    _, info = run_episode(Counter(), lambda obs: np.ones(1), max_steps=4)
    assert info["steps"] == 4 and not info["terminated"]
    # Stop after the first step whose reward is negative: actions +1, +1, -1, ...
    signs = iter([1.0, 1.0, -1.0, 1.0, 1.0, 1.0])
    episode, info = run_episode(Counter(), lambda obs: np.array([next(signs)]),
                                stop=lambda r: r < 0, keep_obs=False)
    assert info["steps"] == 3 and info["return"] == 1.0
    assert "obs" not in episode and len(episode["reward"]) == 4


def test_a_seeded_random_policy_replays_the_same_actions():
    from wmlib.rollout import random_policy

    env = Counter()
    first = run_episode(env, random_policy(env, seed=3))[0]["action"]
    run_episode(env, random_policy(env))  # advances the action space's generator
    again = run_episode(env, random_policy(env, seed=3))[0]["action"]
    np.testing.assert_array_equal(first, again)


def test_an_episode_seed_seeds_the_random_actions_too():
    from wmlib.rollout import random_policy

    env = Counter()
    first = run_episode(env, random_policy(env), seed=5)[0]["action"]
    run_episode(env, random_policy(env))  # advances the action space's generator
    again = run_episode(env, random_policy(env), seed=5)[0]["action"]
    other = run_episode(env, random_policy(env), seed=6)[0]["action"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
