"""VizDoom's Take Cover as World Models plays it (``envs.make("doom:TakeCover")``)."""

import numpy as np
import pytest

from wmlib import envs


@pytest.fixture(scope="module")
def env():
    e = envs.make("doom:TakeCover")
    yield e
    e.close()


def test_action_mapping_follows_the_originals_thresholds():
    # doomrnn/doomreal.py: below -1/3 left, above 1/3 right, otherwise no button
    d = envs.DoomTakeCover.discrete
    assert [d([-1.0]), d([-0.34]), d([-0.33]), d([0.0]), d([0.33]), d([0.34]), d([1.0])] == [
        2, 2, 0, 0, 0, 1, 1]


def test_button_indices_are_vizdooms_left_and_right(env):
    # the wrapped Discrete(3) maps 1 and 2 to the (MOVE_LEFT, MOVE_RIGHT) button vectors
    buttons = [str(b).split(".")[-1].split(":")[0] for b in
               env.unwrapped.game.get_available_buttons()]
    bmap = env.unwrapped.button_map
    assert buttons[int(np.argmax(bmap[envs.DoomTakeCover.LEFT]))] == "MOVE_LEFT"
    assert buttons[int(np.argmax(bmap[envs.DoomTakeCover.RIGHT]))] == "MOVE_RIGHT"
    assert not bmap[envs.DoomTakeCover.STAY].any()


def test_frames_rewards_and_seeding(env):
    obs, _ = env.reset(seed=5)
    assert obs.shape == (3, 64, 64) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    again, _ = envs.make("doom:TakeCover").reset(seed=5)
    np.testing.assert_array_equal(obs, again)
    total, steps = 0.0, 0
    while True:
        obs, r, terminated, truncated, _ = env.step(np.array([0.0], np.float32))
        total, steps = total + r, steps + 1
        assert r == 1.0  # +1 per tic survived
        if terminated or truncated:
            break
    assert total == steps and terminated and steps < envs.DOOM_MAX_STEPS


def test_gymnasium_env_checker(env):
    from gymnasium.utils.env_checker import check_env

    with pytest.warns(UserWarning):  # "different from the unwrapped version": the wrapper
        check_env(env, skip_render_check=True)


def test_bad_action_and_unknown_id(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one number"):
        env.step(np.zeros(3))
    with pytest.raises(envs.EnvIdError, match="doom:TakeCover"):
        envs.make("doom:TakeCovr")
    with pytest.raises(ValueError, match="pixels=True"):
        envs.make("doom:TakeCover", pixels=False)


def test_missing_vizdoom_names_the_install_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vizdoom.gymnasium_wrapper", None)
    with pytest.raises(ImportError, match="pip install 'vizdoom"):
        envs.make("doom:TakeCover")
