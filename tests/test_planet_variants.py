"""Tests of chapter 3's model experiments (wmlib.agents.planet_variants)."""

import json

import numpy as np
import pytest
import torch

from wmlib.agents import planet_variants as pv
from wmlib.agents.planet import CONFIGS
from wmlib.envs import preprocess
from wmlib.replay import Replay

SMOKE, EXP = CONFIGS["smoke"], pv.EXPERIMENTS["smoke"]


def episode(rng, steps=12, value=None):
    obs = rng.integers(0, 256, (steps + 1, 3, 64, 64), dtype=np.uint8)
    if value is not None:
        obs[:] = value
    return {"obs": obs, "action": rng.uniform(-1, 1, (steps + 1, 1)).astype(np.float32),
            "reward": rng.uniform(0, 1, steps + 1).astype(np.float32),
            "done": np.zeros(steps + 1, np.float32)}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    replay = Replay(seed=0)
    for _ in range(2):
        replay.add(episode(rng))
    return replay, episode(rng)


def test_the_mean_frame_floor_by_hand():
    # Training frames all 64 or all 192: the mean frame is their mean, 128, after 5-bit
    # quantisation (64 -> bin 8 -> 0.25 - 0.5, 192 -> bin 24 -> 0.75 - 0.5, mean 0).
    rng = np.random.default_rng(0)
    replay = Replay(seed=0)
    replay.add(episode(rng, value=64))
    replay.add(episode(rng, value=192))
    test = episode(rng, value=255)  # bin 31 -> 31/32 - 0.5
    error = pv.mean_frame_error(replay, test, EXP)
    assert error == pytest.approx((31 / 32 - 0.5) ** 2, rel=1e-6)


def test_open_loop_measures_against_the_centre_of_each_bin(data):
    replay, test = data
    model = pv.PlaNet(SMOKE, 1)
    real, predicted, error = pv.open_loop(model, test, 0, EXP.context, EXP.open_loop)
    assert real.shape == predicted.shape == (EXP.context + EXP.open_loop, 3, 64, 64)
    assert error.shape == (EXP.context + EXP.open_loop,)
    # The same error by hand: the decoded prediction against the bin-centred frames.
    n = EXP.context + EXP.open_loop
    target = preprocess(test["obs"][:n], bits=SMOKE.bits) + 0.5 / 2 ** SMOKE.bits
    torch.manual_seed(0)
    with torch.no_grad():
        obs = target[:, None]
        actions = torch.as_tensor(test["action"][:n])[:, None]
        post, _ = model.dynamics.observe(model.embed(obs[:EXP.context]), actions[:EXP.context])
        imagined = model.dynamics.imagine(actions[EXP.context:], post[-1])
        pred = model.decode(torch.cat([post.features(), imagined.features()])).clamp(-0.5, 0.5)
    np.testing.assert_allclose(error, ((pred - obs) ** 2).mean((1, 2, 3, 4)).numpy(), rtol=1e-5)


def test_fit_draws_the_same_batches_for_the_same_seed(data):
    replay, _ = data
    params = []
    for _ in range(2):
        torch.manual_seed(0)
        model = pv.PlaNet(SMOKE, 1)
        pv.fit(model, replay, 3, 2, 8, seed=5, progress=False)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(params[0], params[1])


def test_a_finished_variant_is_loaded_and_an_interrupted_one_resumes(data, tmp_path):
    replay, _ = data
    exp = pv.ExperimentConfig(**{**EXP.__dict__, "updates": 4})
    model, history, _ = pv.train_variant("ssm", 0, replay, 1, SMOKE, exp, run_dir=tmp_path,
                                         progress=False)
    assert len(history["loss"][0]) == 4
    again, history2, _ = pv.train_variant("ssm", 0, replay, 1, SMOKE, exp, run_dir=tmp_path,
                                          progress=False)
    assert len(history2["loss"][0]) == 4  # loaded, not trained again
    for a, b in zip(model.parameters(), again.parameters()):
        torch.testing.assert_close(a, b)
    # Asking for more updates continues the same run from step 4.
    more = pv.ExperimentConfig(**{**exp.__dict__, "updates": 6})
    _, history3, _ = pv.train_variant("ssm", 0, replay, 1, SMOKE, more, run_dir=tmp_path,
                                      progress=False)
    assert history3["loss"][0] == [0, 1, 2, 3, 4, 5]


def test_variants_pick_their_dynamics_and_overshooting():
    cfg, d, beta = pv.variant_config("rssm + LO", SMOKE, EXP)
    assert (cfg.kind, d, beta, cfg.overshooting_reward) == ("rssm", EXP.overshooting, 1.0, 0.0)
    cfg, d, beta = pv.variant_config("ssm", SMOKE, EXP)
    assert (cfg.kind, d) == ("ssm", 0)
    cfg, d, beta = pv.variant_config("rnn", SMOKE, EXP)
    assert (cfg.kind, d) == ("rnn", EXP.rnn_overshooting)
    # The quick agent's loss: reward overshooting to its horizon, no d-step KLs.
    quick = CONFIGS["quick"]
    cfg, d, beta = pv.variant_config("rssm + RO", quick, pv.EXPERIMENTS["quick"])
    assert (d, beta, cfg.overshooting_reward) == (quick.overshooting, 0.0, 100.0)
    with pytest.raises(ValueError, match="unknown variant 'lstm'"):
        pv.variant_config("lstm", SMOKE, EXP)


def test_reward_errors_against_the_floor_by_hand(data):
    replay, test = data
    model = pv.PlaNet(SMOKE, 1)
    predicted, real = pv.open_loop_rewards(model, test, 1, EXP.context, EXP.open_loop)
    np.testing.assert_array_equal(real, test["reward"][1:1 + EXP.context + EXP.open_loop])
    _, features = pv.rollout(model, test, 1, EXP.context, EXP.open_loop)
    with torch.no_grad():
        np.testing.assert_allclose(predicted, model.predict_reward(features)[:, 0].numpy())
    mean = np.concatenate([e["reward"][1:] for e in replay.episodes]).mean()
    n = EXP.context + EXP.open_loop
    by_hand = np.mean([(test["reward"][s:s + n] - mean) ** 2 for s in pv.starts(test, EXP)])
    assert pv.mean_reward_error(replay, test, EXP) == pytest.approx(by_hand)


def test_the_record_waits_for_every_variant_and_seed(data, tmp_path, monkeypatch):
    replay, test = data
    monkeypatch.setenv("WMLIB_RESULTS", str(tmp_path / "results"))
    summary = {"posterior_mse": 0.001, "open_loop_mse": [0.002] * EXP.open_loop,
               "posterior_reward_se": 0.1, "open_loop_reward_se": [0.2] * EXP.open_loop,
               "final_recon": 1.0, "final_kl": 1.0, "train_seconds": 2.0,
               "updates": EXP.updates}
    names = list(pv.VARIANTS)
    for name in names[:-1]:
        (tmp_path / pv.slug(name, 0)).mkdir()
        (tmp_path / pv.slug(name, 0) / "summary.json").write_text(json.dumps(summary))
    assert pv.record_experiment("smoke", tmp_path, replay, test) is None
    (tmp_path / pv.slug(names[-1], 0)).mkdir()
    (tmp_path / pv.slug(names[-1], 0) / "summary.json").write_text(json.dumps(summary))
    path = pv.record_experiment("smoke", tmp_path, replay, test)
    entry = json.loads(path.read_text())
    assert set(entry["values"]["variants"]) == set(names)
    assert entry["wall_time_s"] == pytest.approx(2.0 * len(names))
    assert entry["values"]["mean_frame_mse"] == pytest.approx(
        pv.mean_frame_error(replay, test, EXP), abs=1e-6)
