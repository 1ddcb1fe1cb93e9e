import gymnasium as gym
import numpy as np
import pytest
import torch

from wmlib import envs


@pytest.mark.parametrize("bad", ["dmc:cartpole-swingupp", "gym:CarRacing-v9", "atari:Pong",
                                 "cartpole"])
def test_unknown_ids_say_what_exists(bad):
    with pytest.raises(envs.EnvIdError, match="dmc:|gym:"):
        envs.make(bad)


def test_unknown_id_suggests_close_match():
    with pytest.raises(envs.EnvIdError, match="Did you mean dmc:cartpole-swingup"):
        envs.make("dmc:cartpole-swingupp")


def test_pixel_and_state_observations():
    env = envs.make("dmc:cartpole-swingup", pixels=True, size=64)
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, 64, 64) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(np.zeros(1, np.float32))
    assert obs.shape == (3, 64, 64) and isinstance(r, float) and not term and not trunc
    state_env = envs.make("dmc:cartpole-swingup", pixels=False)
    obs, _ = state_env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32


def test_planet_action_repeat_defaults():
    assert envs.make("dmc:cartpole-swingup", pixels=False).unwrapped.action_repeat == 8
    assert envs.make("dmc:walker-walk", pixels=False).unwrapped.action_repeat == 2
    assert envs.make("dmc:cheetah-run", pixels=False).unwrapped.action_repeat == 4


def test_action_repeat_sums_rewards_and_time_limit():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (20, 1)).astype(np.float32)
    once = envs.make("dmc:cartpole-swingup", pixels=False, action_repeat=1)
    rep = envs.make("dmc:cartpole-swingup", pixels=False, action_repeat=4)
    once.reset(seed=3)
    rep.reset(seed=3)
    for a in actions:
        summed = sum(once.step(a)[1] for _ in range(4))
        assert rep.step(a)[1] == pytest.approx(summed, abs=1e-9)
    # 1000 control steps per episode: 125 decisions at the default repeat of 8.
    env = envs.make("dmc:cartpole-swingup", pixels=False)
    env.reset(seed=0)
    n, trunc = 0, False
    while not trunc:
        *_, trunc, _ = env.step(np.zeros(1, np.float32))
        n += 1
    assert n == 125


def test_gym_action_repeat_wrapper_sums_rewards():
    base, wrapped = gym.make("Pendulum-v1"), envs.make("gym:Pendulum-v1", pixels=False,
                                                       action_repeat=3)
    base.reset(seed=1)
    wrapped.reset(seed=1)
    a = np.array([0.7], np.float32)
    assert wrapped.step(a)[1] == pytest.approx(sum(base.step(a)[1] for _ in range(3)))


def test_wrong_action_shape_is_a_clear_error(cartpole):
    cartpole.reset(seed=0)
    with pytest.raises(ValueError, match=r"expects actions of shape \(1,\)"):
        cartpole.step(np.zeros(3))


def test_car_racing_frames_are_cropped_and_resized():
    env = envs.make("gym:CarRacing-v3")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 64, 64) and obs.dtype == np.uint8
    raw = env.unwrapped.state  # the 96x96 frame before our wrapper
    assert raw.shape == (96, 96, 3)


def test_preprocess_quantisation_by_hand():
    x = np.array([0, 7, 8, 255], np.uint8)
    # 5 bits: floor(x / 8) / 32 - 0.5
    expected = torch.tensor([0, 0, 1, 31]) / 32 - 0.5
    assert torch.allclose(envs.preprocess(x, bits=5), expected)
    assert torch.allclose(envs.preprocess(x), torch.tensor([0, 7, 8, 255]) / 256 - 0.5)
    noisy = envs.preprocess(np.full(1000, 8, np.uint8), bits=5, noise=True)
    assert (noisy >= 1 / 32 - 0.5).all() and (noisy < 2 / 32 - 0.5).all()
    img = np.random.default_rng(0).integers(0, 256, (3, 8, 8), dtype=np.uint8)
    back = envs.postprocess(envs.preprocess(img))
    assert np.abs(back.astype(int) - img).max() <= 1


def test_preprocess_refuses_floats():
    with pytest.raises(TypeError, match="uint8"):
        envs.preprocess(np.zeros((3, 64, 64), np.float32))


def test_render_state_draws_a_cartpole_observation_as_the_simulator_does(cartpole):
    """A state observation drawn by `render_state` is the frame the environment renders in
    that state (velocities do not show); other environments are refused."""
    obs, _ = cartpole.reset(seed=0)
    for _ in range(5):
        obs, *_ = cartpole.step(np.ones(1, np.float32))
    expected = cartpole.unwrapped.render(64)
    drawn = cartpole.unwrapped.render_state(obs, 64)
    assert drawn.shape == (64, 64, 3) and np.array_equal(drawn, expected)
    upright = cartpole.unwrapped.render_state(np.array([0, 1, 0, 0, 0], np.float32), 64)
    assert not np.array_equal(upright, drawn)
    with pytest.raises(ValueError, match="cartpole"):
        envs.make("dmc:reacher-easy", pixels=False).unwrapped.render_state(obs)
