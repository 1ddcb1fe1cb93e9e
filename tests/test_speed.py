"""The speed options change how fast PlaNet computes, not what it computes.

Each fast path is compared with the plain float32 path of the same weights on a fixed batch and
seed: channels-last convolutions to float32 rounding, bfloat16 autocast to bf16 rounding (about
three significant digits: the losses within 2%, the gradients pointing the same way), and CEM
through a bf16 rollout to the same returns and plan within bf16 tolerance. Their speed is
measured by ``benchmarks/bench_ch03.py``, not here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wmlib import devices
from wmlib.agents import planet
from wmlib.agents.planet import CONFIGS, PlaNet
from wmlib.objectives import reconstruction_loss

BASE = dataclasses.replace(CONFIGS["smoke"], depth=8, stoch_size=8, deter_size=32,
                           hidden_size=32, overshooting=3, overshooting_reward=1.0,
                           horizon=6, candidates=200, top_k=20, iterations=4)


def batch(B: int = 4, T: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"obs": rng.integers(0, 256, (B, T, 3, 64, 64), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, 1)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32)}


def twin(**options) -> tuple[PlaNet, PlaNet]:
    """The plain model and a fast one with the same weights."""
    torch.manual_seed(0)
    plain = PlaNet(BASE, action_size=1)
    fast = PlaNet(dataclasses.replace(BASE, **options), action_size=1)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


def loss_and_grads(model: PlaNet) -> tuple[dict, list[torch.Tensor]]:
    torch.manual_seed(1)  # the same dequantisation noise and latent samples for both paths
    obs, actions, rewards = model.prepare(batch())
    loss, metrics, _ = model.loss(obs, actions, rewards)
    model.zero_grad()
    loss.backward()
    return metrics, [p.grad.clone() for p in model.parameters()]


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    a, b = torch.cat([x.flatten() for x in a]), torch.cat([x.flatten() for x in b])
    return float(a @ b / (a.norm() * b.norm()))


def test_channels_last_gives_the_same_loss_and_gradients():
    plain, fast = twin(channels_last=True)
    (m0, g0), (m1, g1) = loss_and_grads(plain), loss_and_grads(fast)
    for k in m0:
        torch.testing.assert_close(m1[k], m0[k], rtol=1e-4, atol=1e-4)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(not devices.bf16_supported(torch.device("cpu")), reason="no bf16")
def test_bf16_autocast_gives_the_same_loss_and_gradients_within_bf16_rounding():
    plain, fast = twin(bf16=True, channels_last=True)
    (m0, g0), (m1, g1) = loss_and_grads(plain), loss_and_grads(fast)
    for k in ("recon", "reward_loss", "kl", "loss"):
        assert float(m1[k]) == pytest.approx(float(m0[k]), rel=2e-2), k
    assert cosine(g0, g1) > 0.99


def test_bf16_planning_gives_the_same_returns_and_plan_within_tolerance():
    plain, fast = twin(plan_bf16=True)
    state = plain.dynamics.initial(1)
    actions = torch.rand(BASE.candidates, BASE.horizon, 1, generator=torch.Generator()
                         .manual_seed(2)) * 2 - 1
    torch.manual_seed(3)
    r0 = plain.returns(state, actions)
    torch.manual_seed(3)
    r1 = fast.returns(state, actions)
    assert r1.dtype == torch.float32
    assert (r1 - r0).abs().max() < 2e-2 * r0.abs().max() + 1e-3
    torch.manual_seed(4)
    a0 = plain.plan(state, devices.generator("cpu", 5))
    torch.manual_seed(4)
    a1 = fast.plan(state, devices.generator("cpu", 5))
    assert (a1 - a0).abs().item() < 0.1


def test_bf16_planning_follows_the_model_after_an_update():
    """The bfloat16 copy that CEM rolls out is refreshed from the model at every call."""
    plain, fast = twin(plan_bf16=True)
    state = plain.dynamics.initial(1)
    actions = torch.zeros(8, BASE.horizon, 1)
    fast.returns(state, actions)  # builds the copy
    with torch.no_grad():
        fast.reward[-1].bias.add_(1.0)  # every predicted reward + 1, so every return + H
        plain.reward[-1].bias.add_(1.0)
    torch.manual_seed(3)
    r0 = plain.returns(state, actions)
    torch.manual_seed(3)
    r1 = fast.returns(state, actions)
    assert (r1 - r0).abs().max() < 2e-2 * r0.abs().max() + 1e-2
    assert "_bf16_twin" not in "".join(fast.state_dict())  # not saved in checkpoints


def test_decoder_matmul_gives_the_same_loss_and_gradients():
    plain, fast = twin(decoder_matmul=True, channels_last=True)
    (m0, g0), (m1, g1) = loss_and_grads(plain), loss_and_grads(fast)
    for k in m0:
        torch.testing.assert_close(m1[k], m0[k], rtol=1e-4, atol=1e-4)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(devices.compile_available("cpu") is not None,
                    reason="torch.compile unavailable on this machine")
def test_compiled_reconstruction_loss_gives_the_same_loss_and_gradients():
    plain, fast = twin(compile=True)
    (m0, g0), (m1, g1) = loss_and_grads(plain), loss_and_grads(fast)
    assert fast._recon_fn is not reconstruction_loss  # really compiled
    for k in m0:
        torch.testing.assert_close(m1[k], m0[k], rtol=1e-4, atol=1e-3)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4)


def test_compile_falls_back_with_a_clear_message_where_it_is_unavailable(monkeypatch):
    monkeypatch.setattr(devices, "compile_available", lambda device_type="cpu": "no compiler")
    plain, fast = twin(compile=True)
    with pytest.warns(RuntimeWarning, match="torch.compile is unavailable here .no compiler.*"
                                           "runs eagerly"):
        (m1, _) = loss_and_grads(fast)
    assert fast._recon_fn is reconstruction_loss
    (m0, _) = loss_and_grads(plain)
    torch.testing.assert_close(m1["loss"], m0["loss"])


def test_compile_available_reports_a_failure_instead_of_raising(monkeypatch):
    devices.compile_available.cache_clear()

    def broken(*args, **kwargs):
        raise RuntimeError("Compiler: cc not found\nmore detail")

    monkeypatch.setattr(torch, "compile", broken)
    try:
        assert devices.compile_available("cpu") == "RuntimeError: Compiler: cc not found"
    finally:
        devices.compile_available.cache_clear()


@pytest.mark.skipif(devices.compile_available("cpu") is not None,
                    reason="torch.compile unavailable on this machine")
def test_compiled_planning_rollout_gives_the_same_returns_from_the_same_seed():
    """The compiled rollout draws its latent samples from PyTorch's generator, as the eager one
    does (`devices.compiled`), so from the same seed it gives the same returns, sample by
    sample, within float32 rounding; and a CEM plan through it gives the same first action."""
    plain, fast = twin(compile=True)
    with torch.no_grad():  # a sharper reward head, so that the samples' spread is visible
        for m in (plain, fast):
            m.reward[-1].weight.mul_(20.0)
    state = plain.dynamics.initial(1)
    actions = torch.rand(500, BASE.horizon, 1, generator=torch.Generator().manual_seed(2)) * 2 - 1
    torch.manual_seed(3)
    r0 = plain.returns(state, actions)
    torch.manual_seed(3)
    r1 = fast.returns(state, actions)
    assert fast._rollout_fn is not planet.rollout_returns  # really compiled
    assert float(r0.std()) > 0.1  # the samples matter: different seeds give other returns
    torch.testing.assert_close(r1, r0, rtol=1e-4, atol=1e-4)
    torch.manual_seed(4)
    r2 = plain.returns(state, actions)
    assert not torch.allclose(r2, r0, rtol=1e-3, atol=1e-3)
    plans = []
    for m in (plain, fast):
        torch.manual_seed(5)
        plans.append(m.plan(state, devices.generator("cpu", 6)))
    torch.testing.assert_close(plans[1], plans[0], rtol=1e-3, atol=1e-3)
