"""Chapter 2's pipeline (wmlib.agents.world_models): data alignment, the faster CarRacing
rendering, the original random policy, and every stage on a tiny run that resumes."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from wmlib import envs
from wmlib.agents import world_models as wm

TINY = replace(wm.CONFIGS["smoke"], rollouts=2, rollout_steps=12, rnn_steps=3, generations=2,
               zonly_generations=1, dream_generations=2, dream_steps=5, train_max_steps=8,
               eval_max_steps=8)


def test_fast_rendering_keeps_rewards_and_frames():
    slow, fast = envs.make(TINY.env_id), wm.make_env(TINY)
    o1, _ = slow.reset(seed=4)
    o2, _ = fast.reset(seed=4)
    rng = np.random.default_rng(0)
    worst = 0
    for _ in range(60):
        a = np.array([rng.uniform(-1, 1), rng.uniform(0, 1), 0.0], np.float32)
        o1, r1, *_ = slow.step(a)
        o2, r2, *_ = fast.step(a)
        assert r1 == r2
        diff = np.abs(o1.astype(int) - o2)
        worst = max(worst, diff.max())
        assert (diff > 0).mean() < 0.05  # only anti-aliased edges may round differently
    assert worst <= 8


def test_sequence_batch_aligns_inputs_and_targets():
    T = 30
    series = {"mu": np.arange(2 * T, dtype=np.float32)[:, None].repeat(2, 1),
              "logvar": np.zeros((2 * T, 2), np.float32),
              "action": np.arange(2 * T, dtype=np.float32)[:, None].repeat(3, 1) + 0.5,
              "reward": np.arange(2 * T, dtype=np.float32) + 0.25,
              "done": np.zeros(2 * T, bool), "starts": np.array([0, T, 2 * T])}
    b = wm.sequence_batch(series, 16, 10, np.random.default_rng(0), sample_z=False)
    z, z_next = b["z"][..., 0], b["z_next"][..., 0]
    torch.testing.assert_close(z_next, z + 1)  # z_{t+1} follows z_t
    torch.testing.assert_close(b["action"][..., 0], z + 1.5)  # a_t = action[t + 1]
    torch.testing.assert_close(b["reward"], z + 1.25)  # r_{t+1}
    assert ((z < T) == (z_next < T)).all()  # a window never crosses two rollouts
    assert b["mask"].all()


def test_original_random_policy_stays_in_the_action_box():
    env = wm.make_env(TINY)
    policy = wm.OriginalRandomPolicy(TINY, np.random.default_rng(0))
    ep = wm.run_policy(env, policy, seed=0, max_steps=15, frames=True)
    assert ep["obs"].shape == (16, 3, 64, 64) and ep["obs"].dtype == np.uint8
    a = ep["action"]
    assert a.shape == (16, 3) and (a[:, 0] >= -1).all() and (a[:, 0] <= 1).all()
    assert (a[:, 1:] >= 0).all() and (a[:, 1:] <= 1).all()
    np.testing.assert_allclose(ep["reward"].sum(), ep["return"], rtol=1e-5)


def test_pipeline_stages_run_and_resume(tmp_path):
    run = wm.Run(TINY, tmp_path)
    paths = wm.collect_rollouts(TINY, run, progress=False)
    first = wm.load_rollout(paths[0])
    assert first["obs"].shape[1:] == (3, 64, 64) and len(first["action"]) == len(first["obs"])
    vae, hist = wm.train_vae(TINY, run, progress=False)
    series = wm.encode_dataset(TINY, run, vae, progress=False)
    assert series["mu"].shape[1] == TINY.latent_dim and series["starts"][-1] == len(series["mu"])
    m, _ = wm.train_mdnrnn(TINY, run, series, progress=False)
    real = wm.train_controller(TINY, run, "real_zh", "real", vae=vae, mdnrnn=m, progress=False)
    dream = wm.train_controller(TINY, run, "dream_zh", "dream", vae=vae, mdnrnn=m,
                                progress=False)
    assert real["params"].shape == dream["params"].shape == (867 - 867 + (8 + 16) * 3 + 3,)
    assert real["es"].generations == 2 and len(real["es"].history["best"][0]) == 2
    out = wm.evaluate_controller(TINY, run, "real_zh", real["params"], episodes=1, vae=vae,
                                 mdnrnn=m, progress=False)
    assert len(out["returns"]) == 1

    # a rerun resumes: nothing is collected, trained or evaluated again
    mtime = paths[0].stat().st_mtime
    again = wm.train_controller(TINY, run, "real_zh", "real", progress=False)
    np.testing.assert_array_equal(again["params"], real["params"])
    assert again["es"].evaluations == real["es"].evaluations
    wm.collect_rollouts(TINY, run, progress=False)
    assert paths[0].stat().st_mtime == mtime
    assert json.loads((tmp_path / "eval_real_zh.json").read_text()) == \
        wm.evaluate_controller(TINY, run, "real_zh", real["params"], episodes=1, progress=False)
    torch.testing.assert_close(wm.load_vae(TINY, tmp_path).mu.weight, vae.mu.weight)
    with pytest.raises(ValueError, match="another configuration"):
        wm.Run(replace(TINY, popsize=6), tmp_path)
    with pytest.raises(ValueError, match="where"):
        wm.train_controller(TINY, run, "x", "moon", vae=vae, mdnrnn=m)


def test_train_vae_without_rollouts_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="collect_rollouts"):
        wm.train_vae(TINY, tmp_path, progress=False)


def test_the_policy_samples_z_as_the_original_and_replays_with_the_episode_seed():
    env = wm.make_env(TINY)
    torch.manual_seed(0)
    vae, m = wm.make_vae(TINY), wm.make_mdnrnn(TINY)
    c = wm.make_controller(TINY, use_hidden=True)
    c.set_params(np.random.default_rng(0).normal(size=c.num_params))
    sampled = wm.WorldModelsPolicy(vae, m, c, trace=True)
    runs = [wm.run_policy(env, sampled, seed=s, max_steps=6, frames=True)["action"]
            for s in (3, 3)]
    np.testing.assert_array_equal(runs[0], runs[1])  # same episode seed, same noise
    mean = wm.WorldModelsPolicy(vae, m, c, trace=True, sample_z=False)
    ep = wm.run_policy(env, mean, seed=3, max_steps=6, frames=True)
    with torch.no_grad():
        mu = vae.encode(envs.preprocess(torch.as_tensor(ep["obs"][:6]))).loc.numpy()
    np.testing.assert_allclose(np.stack(mean.zs), mu, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ep["action"], runs[0])  # the sampled z moved the actions
