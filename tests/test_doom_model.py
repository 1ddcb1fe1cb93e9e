"""World Models' Take Cover pieces (chapter 2, part two): M's restart-weighted done loss and
its LSTM reset at restarts, windows that run across rollouts, Doom's random data policy, and
the survival dream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.env_checker import check_env

from wmlib.agents import world_models as wm
from wmlib.dream import DreamEnv, dream_returns
from wmlib.models.mdnrnn import MDNRNN


def doom_m(seed: int = 0, **kw) -> MDNRNN:
    torch.manual_seed(seed)
    return MDNRNN(latent_dim=4, action_dim=1, hidden=8, n_mixtures=3, **kw)


def test_done_loss_weighs_episode_ends_by_hand():
    m = doom_m()
    z, a, z_next = torch.randn(2, 5, 4), torch.randn(2, 5, 1), torch.randn(2, 5, 4)
    done = torch.zeros(2, 5)
    done[0, 4] = done[1, 2] = 1
    logit = m(z, a)[0].done
    by_hand = []
    for b in range(2):
        for t in range(5):
            y, p = float(done[b, t]), torch.sigmoid(logit[b, t]).item()
            bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
            by_hand.append((10 if y else 1) * bce)
    out = m.loss(z, a, z_next, done=done, done_weight=10.0)
    assert out["done"].item() == pytest.approx(np.mean(by_hand), rel=1e-5)
    plain = m.loss(z, a, z_next, done=done)["done"].item()
    assert plain == pytest.approx(F.binary_cross_entropy_with_logits(logit, done).item(),
                                  rel=1e-6)
    assert out["done"].item() > plain


def test_restart_resets_the_lstm_state():
    m = doom_m()
    za, aa = torch.randn(1, 3, 4), torch.randn(1, 3, 1)  # episode A
    zb, ab = torch.randn(1, 4, 4), torch.randn(1, 4, 1)  # episode B
    restart = torch.tensor([[1.0, 0, 0, 1, 0, 0, 0]])
    joined, _ = m(torch.cat([za, zb], 1), torch.cat([aa, ab], 1), restart=restart)
    alone, _ = m(zb, ab)  # B from h = c = 0
    torch.testing.assert_close(joined.mean[:, 3:], alone.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(joined.done[:, 3:], alone.done, rtol=1e-5, atol=1e-6)
    # without the restart, B's outputs depend on A
    carried, _ = m(torch.cat([za, zb], 1), torch.cat([aa, ab], 1))
    assert not torch.allclose(carried.mean[:, 3:], alone.mean, atol=1e-4)
    # with no restart inside, the step-by-step path is the fused LSTM
    stepwise, state = m(za, aa, restart=torch.zeros(1, 3))
    fused, fused_state = m(za, aa)
    torch.testing.assert_close(stepwise.logits, fused.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state[0], fused_state[0], rtol=1e-5, atol=1e-6)


def test_stream_windows_cross_rollouts_with_restarts_and_masks():
    starts = np.array([0, 5, 9, 15])  # three rollouts of 5, 4 and 6 frames
    n = 15
    series = {"mu": np.arange(n, dtype=np.float32)[:, None].repeat(2, 1),
              "logvar": np.full((n, 2), -50.0, np.float32),
              "action": np.arange(n, dtype=np.float32)[:, None] + 100,
              "reward": np.ones(n, np.float32), "done": np.isin(np.arange(n), [4, 14]),
              "starts": starts}
    b = wm.sequence_batch(series, 64, 6, np.random.default_rng(0), sample_z=False,
                          streams=True)
    z, z_next = b["z"][..., 0].numpy(), b["z_next"][..., 0].numpy()
    np.testing.assert_array_equal(z_next, z + 1)  # consecutive frames of the stream
    first = np.isin(z, starts[:-1])
    np.testing.assert_array_equal(b["restart"].numpy(), first)
    # the step from a rollout's last frame to the next one's first is no transition
    np.testing.assert_array_equal(b["mask"].numpy(), ~np.isin(z_next, starts[:-1]))
    np.testing.assert_array_equal(b["action"][..., 0].numpy(), z_next + 100)  # a_t = action[t+1]
    np.testing.assert_array_equal(b["done"].numpy(), np.isin(z_next, [4, 14]))
    with pytest.raises(ValueError, match="rnn_seq_len"):
        wm.sequence_batch(series, 2, 15, np.random.default_rng(0), streams=True)


def test_dooms_random_policy_holds_a_uniform_action_one_to_ten_steps():
    cfg = wm.WorldModelsConfig(action_low=(-1.0,), action_high=(1.0,), brake_clip=False,
                               random_policy="repeat")
    policy = wm.random_data_policy(cfg, np.random.default_rng(0))
    actions = np.array([policy(None)[0] for _ in range(5000)])
    assert actions.min() >= -1 and actions.max() < 1
    change = np.flatnonzero(np.diff(actions) != 0) + 1
    runs = np.diff(np.concatenate([[0], change]))
    assert runs.min() >= 1 and runs.max() <= 10  # two equal uniform draws in a row: never
    assert 4 < runs.mean() < 7  # the mean of 1..10 is 5.5
    with pytest.raises(ValueError, match="random_policy"):
        wm.random_data_policy(wm.WorldModelsConfig(random_policy="uniform"), None)


def controller_params(m: MDNRNN, bias: float) -> np.ndarray:
    return np.concatenate([np.zeros(m.latent_dim + m.hidden), [bias]])[None]


def test_survival_dream_pays_one_per_step_until_m_predicts_death():
    m = doom_m(reward_head=False)
    kw = dict(low=(-1.0,), high=(1.0,), brake_clip=False, reward="survival", steps=50)
    with torch.no_grad():
        m.done.weight.zero_()
        m.done.bias.fill_(-20.0)  # never dies
        alive = dream_returns(m, controller_params(m, 0.0), torch.randn(3, 4), **kw)
        m.done.bias.fill_(20.0)  # dies at the first step, which still pays 1
        dead = dream_returns(m, controller_params(m, 0.0), torch.randn(3, 4), **kw)
    np.testing.assert_array_equal(alive, 50.0)
    np.testing.assert_array_equal(dead, 1.0)
    with pytest.raises(ValueError, match="survival"):
        dream_returns(m, controller_params(m, 0.0), torch.randn(3, 4), low=(-1.0,),
                      high=(1.0,), brake_clip=False)


def test_survival_dream_env_with_one_action_passes_the_env_checker():
    m = doom_m(reward_head=False)
    env = DreamEnv(m, torch.randn(5, 4), max_steps=30, action_low=(-1.0,), action_high=(1.0,),
                   reward="survival")
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    _, reward, *_ = env.step(np.array([0.5], np.float32))
    assert reward == 1.0


def synthetic_take_cover(rollouts: int, cap: int, rng: np.random.Generator) -> dict:
    """Encoded rollouts of a toy Take Cover: z_t ~ N(0, I); when |z_t[0]| > 1.5 a fireball
    comes from the side sign(z_t[0]), and the agent dies unless it moves away, a_t sign(z_t[0])
    > 1/3 (Doom's threshold for a move). Replay alignment, as `encode_dataset` writes it."""
    cfg = wm.WorldModelsConfig(action_low=(-1.0,), action_high=(1.0,), brake_clip=False,
                               random_policy="repeat")
    parts = {k: [] for k in ("mu", "action", "done")}
    starts, n = [], 0
    for _ in range(rollouts):
        policy = wm.random_data_policy(cfg, rng)
        z = [rng.standard_normal(4).astype(np.float32)]
        actions, done = [np.zeros(1, np.float32)], [False]
        while len(z) <= cap:
            a = policy(None)
            dies = abs(z[-1][0]) > 1.5 and a[0] * np.sign(z[-1][0]) <= 1 / 3
            actions.append(a)
            z.append(rng.standard_normal(4).astype(np.float32))
            done.append(bool(dies))
            if dies:
                break
        parts["mu"].append(np.stack(z))
        parts["action"].append(np.stack(actions))
        parts["done"].append(np.array(done))
        starts.append(n)
        n += len(z)
    series = {k: np.concatenate(v) for k, v in parts.items()}
    series.update(logvar=np.full_like(series["mu"], -20.0), reward=np.ones(n, np.float32),
                  starts=np.array(starts + [n]))
    return series


@pytest.mark.slow
def test_a_controller_learns_to_survive_inside_the_dream(tmp_path):
    """M learns the toy game's deaths from random play (restart-weighted, across rollouts);
    CMA-ES inside M's dream then finds a controller that survives, where the zero controller
    (which never moves) dies at once."""
    series = synthetic_take_cover(200, 40, np.random.default_rng(0))
    np.savez(tmp_path / "series.npz", **series)
    cfg = wm.WorldModelsConfig(
        env_id="doom:TakeCover", action_low=(-1.0,), action_high=(1.0,), brake_clip=False,
        random_policy="repeat", done_weight=10.0, rnn_streams=True, dream_reward="survival",
        latent_dim=4, hidden=32, mixtures=2, rnn_seq_len=20, rnn_batch=32, rnn_lr=3e-3,
        rnn_steps=800, dream_popsize=16, dream_rollouts=8, dream_generations=20,
        dream_steps=40, torch_threads=None)
    torch.manual_seed(0)
    m, history = wm.train_mdnrnn(cfg, tmp_path, series=series, progress=False, device="cpu")
    vae = wm.make_vae(cfg)
    c = wm.train_controller(cfg, tmp_path, "dream", "dream", True, vae=vae, mdnrnn=m,
                            progress=False, temperature=1.0)
    from wmlib.agents.world_models_doom import dream_scores

    learned = dream_scores(cfg, m, series, c["params"], 1.0, 64).mean()
    still = dream_scores(cfg, m, series, np.zeros_like(c["params"]), 1.0, 64).mean()
    print(f"steps survived in the dream: learned {learned:.1f}, standing still {still:.1f}")
    assert still < 15, still  # standing still dies at the first fireball (about every 7 steps)
    assert learned > 20 and learned > 2.5 * still, (learned, still)  # 40 is the cap
    # (measured: 26.6 against 7.0)


def test_dream_episode_and_real_next_to_dreamed(tmp_path):
    from wmlib.agents import world_models_doom as doom

    cfg = doom.CONFIGS["smoke"]
    torch.manual_seed(0)
    vae, m = wm.make_vae(cfg), wm.make_mdnrnn(cfg)
    series = {"mu": np.random.default_rng(0).standard_normal((9, cfg.latent_dim)),
              "starts": np.array([0, 4, 9])}
    c = wm.make_controller(cfg)
    ep = doom.dream_episode(cfg, m, vae, series, np.zeros(c.num_params), 1.0, seed=0, steps=7)
    assert ep["frames"].shape == (ep["steps"] + 1, 64, 64, 3) and ep["steps"] <= 7
    assert len(ep["p_done"]) == len(ep["action"]) == ep["steps"]
    assert ep["died"] == (ep["p_done"][-1] > 0.5)
    env = wm.make_env(cfg)
    # with every frame given as context, the "dream" is V's reconstruction of the real frames
    full = doom.real_and_dreamed(cfg, env, m, vae, seed=1, context=10**6, steps=8)
    np.testing.assert_array_equal(full["dreamed"], full["reconstructed"])
    assert full["real"].shape == full["dreamed"].shape == (full["steps"] + 1, 3, 64, 64)
    part = doom.real_and_dreamed(cfg, env, m, vae, seed=1, context=2, steps=8)
    np.testing.assert_array_equal(part["real"], full["real"])  # the same actions, same game
    np.testing.assert_array_equal(part["dreamed"][:2], full["reconstructed"][:2])
    assert not np.array_equal(part["dreamed"][2:], full["reconstructed"][2:])


def toy_series(lengths=(5, 4, 6, 7, 3, 5)) -> dict:
    """Rollouts laid end to end whose codes are their frame indices (no noise)."""
    n = int(sum(lengths))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return {"mu": np.arange(n, dtype=np.float32)[:, None].repeat(2, 1),
            "logvar": np.full((n, 2), -50.0, np.float32),
            "action": np.arange(n, dtype=np.float32)[:, None] + 100,
            "reward": np.ones(n, np.float32), "done": np.isin(np.arange(n), starts[1:] - 1),
            "starts": starts}


def test_stateful_streams_read_each_row_in_consecutive_windows():
    """The original Doom batching: each epoch, shuffled rollouts end to end, cut into rows,
    each row read in consecutive windows (the next window starts where the last one ended),
    with restarts where a rollout starts and the crossing step masked out."""
    series = toy_series()
    first = np.isin(np.arange(30), series["starts"][:-1])
    s = wm.StatefulStreams(series, batch=2, seq_len=3, rng=np.random.default_rng(0),
                           sample_z=False)
    assert s.windows == (30 // 2 - 1) // 3 == 4
    for _epoch in range(2):
        seen, last = [], None
        for k in range(s.windows):
            b = s.next()
            assert b["new_epoch"] == (k == 0)
            z, z_next = b["z"][..., 0].numpy(), b["z_next"][..., 0].numpy()
            if last is not None:
                np.testing.assert_array_equal(z[:, 0], last)  # continues the last window
            last = z_next[:, -1]
            np.testing.assert_array_equal(b["restart"].numpy(), first[z.astype(int)])
            np.testing.assert_array_equal(b["mask"].numpy(), ~first[z_next.astype(int)])
            # within a rollout the next frame is the next index
            inside = b["mask"].numpy() > 0
            np.testing.assert_array_equal(z_next[inside], z[inside] + 1)
            np.testing.assert_array_equal(b["action"][..., 0].numpy(), z_next + 100)
            seen.append(z)
        rows = np.concatenate(seen, 1)
        assert len(np.unique(rows)) == rows.size  # no frame twice in an epoch
    with pytest.raises(ValueError, match="rnn_batch"):
        wm.StatefulStreams(series, batch=8, seq_len=4, rng=np.random.default_rng(0))


def test_truncated_bptt_over_two_windows_is_the_whole_sequence():
    """M's state carried from one window into the next gives the outputs and the loss of one
    window over the whole sequence: what lets M remember further back than a window."""
    m = doom_m()
    z, a, z_next = torch.randn(2, 10, 4), torch.randn(2, 10, 1), torch.randn(2, 10, 4)
    done = (torch.rand(2, 10) < 0.2).float()
    restart = torch.zeros(2, 10)
    restart[1, 6] = 1
    whole, _ = m.loss_and_state(z, a, z_next, done=done, restart=restart, done_weight=10.0)
    first, state = m.loss_and_state(z[:, :5], a[:, :5], z_next[:, :5], done=done[:, :5],
                                    restart=restart[:, :5], done_weight=10.0)
    second, _ = m.loss_and_state(z[:, 5:], a[:, 5:], z_next[:, 5:], done=done[:, 5:],
                                 restart=restart[:, 5:], done_weight=10.0, hidden=state)
    for k in ("nll", "done"):  # equal halves: the mean of the halves' means
        assert ((first[k] + second[k]) / 2).item() == pytest.approx(whole[k].item(), rel=1e-5)
    fresh, _ = m.loss_and_state(z[:, 5:], a[:, 5:], z_next[:, 5:], done=done[:, 5:],
                                restart=restart[:, 5:], done_weight=10.0)
    assert fresh["nll"].item() != pytest.approx(second["nll"].item(), rel=1e-4)


def test_stateful_training_starts_each_window_from_the_last_ones_state(tmp_path, monkeypatch):
    """train_mdnrnn with rnn_stateful: the first window of an epoch starts from zero, every
    other from the detached state M ended the previous window with."""
    calls = []
    real = MDNRNN.loss_and_state

    def spy(self, *args, hidden=None, **kw):
        out, state = real(self, *args, hidden=hidden, **kw)
        calls.append((hidden, state))
        return out, state

    monkeypatch.setattr(MDNRNN, "loss_and_state", spy)
    cfg = wm.WorldModelsConfig(action_low=(-1.0,), action_high=(1.0,), brake_clip=False,
                               latent_dim=2, hidden=8, mixtures=2, rnn_seq_len=3, rnn_batch=2,
                               rnn_steps=6, rnn_streams=True, rnn_stateful=True,
                               torch_threads=None)
    series = toy_series()
    series["action"] = series["action"][:, :1]
    wm.train_mdnrnn(cfg, tmp_path, series=series, progress=False, device="cpu")
    assert len(calls) == 6
    assert calls[0][0] is None and calls[4][0] is None  # 4 windows per epoch
    for k in (1, 2, 3, 5):
        torch.testing.assert_close(calls[k][0][0], calls[k - 1][1][0].detach())
        assert not calls[k][0][0].requires_grad


def test_random_actions_in_the_dream_survive_until_m_predicts_death():
    m = doom_m(reward_head=False)
    kw = dict(low=(-1.0,), high=(1.0,), brake_clip=False, reward="survival", steps=30,
              generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.done.weight.zero_()
        m.done.bias.fill_(-20.0)
        alive = dream_returns(m, None, torch.randn(5, 4), **kw)
        m.done.bias.fill_(20.0)
        dead = dream_returns(m, None, torch.randn(5, 4), **kw)
    assert alive.shape == dead.shape == (1, 5)
    np.testing.assert_array_equal(alive, 30.0)
    np.testing.assert_array_equal(dead, 1.0)
