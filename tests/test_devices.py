"""Device correctness without a GPU.

CI has no GPU, so the code paths that would run on one are run on PyTorch's ``meta`` device
instead: a meta tensor has shapes and dtypes but no data, and every operation that mixes it
with a CPU tensor (other than a 0-d scalar) raises "Tensor on device cpu is not on the expected
device meta", as a CUDA computation does with a stray CPU tensor. Each model's loss (with its
backward pass), each planner, and the batch preparation from replay arrays run here on
``meta``: a tensor created without ``device=`` anywhere on those paths fails these tests.

Generators are checked separately (PyTorch lets a CPU generator draw meta tensors, but not
CUDA ones), and checkpoints are loaded from a file whose tensors claim to come from a GPU.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from wmlib import devices, envs
from wmlib.agents import mpc, planet
from wmlib.agents import world_models as wm
from wmlib.dream import sample_mixture
from wmlib.models.mdnrnn import MDNRNN
from wmlib.models.mlp_dynamics import MLPDynamics
from wmlib.models.rssm import KINDS, LatentDynamics
from wmlib.models.vae import VAE
from wmlib.planners import cem_plan, random_shooting

META = torch.device("meta")
SMOKE = planet.CONFIGS["smoke"]


@pytest.fixture(autouse=True)
def no_argument_validation():
    """torch.distributions checks its arguments' values, which a meta tensor does not have
    (on a GPU the check works, at the cost of a sync); off here, restored after each test."""
    from torch.distributions import Distribution

    old = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    yield
    Distribution.set_default_validate_args(old)


def replay_batch(B: int = 2, T: int = 6, A: int = 1) -> dict[str, np.ndarray]:
    """A replay batch as `Replay.sample` returns it: NumPy, uint8 pixels, on no device."""
    rng = np.random.default_rng(0)
    return {"obs": rng.integers(0, 256, (B, T, 3, 64, 64), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32)}


def test_meta_device_catches_a_stray_cpu_tensor():
    """The premise of this file: mixing a CPU tensor into a meta computation fails."""
    with pytest.raises(RuntimeError, match="device"):
        torch.ones(3, device=META) + torch.ones(3)


@pytest.mark.parametrize("overshooting", [0, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_planet_loss_and_backward_run_on_the_models_device(kind, overshooting):
    cfg = dataclasses.replace(SMOKE, kind=kind, overshooting=overshooting,
                              overshooting_reward=1.0)
    model = PlaNet_on_meta(cfg)
    obs, actions, rewards = model.prepare(replay_batch())
    assert obs.device == actions.device == rewards.device == META
    loss, metrics, posteriors = model.loss(obs, actions, rewards)
    assert loss.device == META and all(v.device == META for v in metrics.values())
    loss.backward()
    assert all(p.grad is None or p.grad.device == META for p in model.parameters())


def PlaNet_on_meta(cfg) -> planet.PlaNet:
    return planet.PlaNet(cfg, action_size=1).to(META)


def test_dreamer_imagines_and_learns_behaviour_on_the_models_device():
    from wmlib.agents.dreamer import CONFIGS as DREAMER
    from wmlib.agents.dreamer import Dreamer

    d = Dreamer(DREAMER["smoke"], action_size=1).to(META)
    _, _, posteriors = d.world.loss(*d.world.prepare(replay_batch()))
    actor_loss, imagined, lam, weights = d.actor_loss(posteriors)
    actor_loss.backward()
    d.value_loss(imagined, lam, weights).backward()
    assert lam.device == META and all(p.grad.device == META for p in d.actor.parameters())


def test_latent_cem_plans_on_the_models_device():
    model = PlaNet_on_meta(SMOKE)
    state = model.dynamics.initial(1)
    action = model.plan(state, generator=None)
    assert action.device == META and action.shape == (1,)


def test_filtering_a_frame_from_the_environment_runs_on_the_device():
    model = PlaNet_on_meta(SMOKE)
    frame = np.zeros((3, 64, 64), np.uint8)  # as the environment returns it
    embed = model.embed(model.preprocess(frame)[None])
    state, _ = model.dynamics.obs_step(model.dynamics.initial(1),
                                       torch.zeros(1, 1, device=META), embed)
    assert state.deter.device == META


@pytest.mark.parametrize("kind", KINDS)
def test_latent_dynamics_observe_and_imagine_on_the_device(kind):
    dyn = LatentDynamics(2, 16, kind, 4, 8, 8).to(META)
    embeds, actions = torch.zeros(5, 3, 16, device=META), torch.zeros(5, 3, 2, device=META)
    posts, priors = dyn.observe(embeds, actions)
    imagined = dyn.imagine(actions, posts[-1])
    assert posts.features().device == priors.features().device == META
    assert imagined.features().device == META


def test_shooting_planners_draw_candidates_on_the_objectives_device():
    model = MLPDynamics(5, 1, 16).to(META)
    obs = torch.zeros(5, device=META)
    a = cem_plan(lambda x: model.returns(obs, x), horizon=3, action_dim=1, candidates=10,
                 top_k=2, iterations=2, device=META)
    b = random_shooting(lambda x: model.returns(obs, x), horizon=3, action_dim=1,
                        candidates=10, device=META)
    assert a.device == b.device == META


def test_learned_model_agent_batches_and_plans_on_its_device():
    cfg = mpc.CONFIGS["smoke"]
    agent = mpc.LearnedModelAgent(cfg, 5, 1, device=META)
    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(4, 2, 5)).astype(np.float32),
             "action": rng.uniform(-1, 1, (4, 2, 1)).astype(np.float32),
             "reward": rng.uniform(size=(4, 2)).astype(np.float32)}
    tensors = mpc.transitions(batch, agent.device)
    assert all(t.device == META for t in tensors)
    agent.model.loss(*tensors)["loss"].backward()
    obs = torch.zeros(5, device=META)
    plan = cem_plan(lambda x: agent.model.returns(obs, x), horizon=2, action_dim=1,
                    candidates=6, top_k=2, iterations=1, device=agent.device)
    assert plan.device == META


def test_world_models_v_and_m_train_on_the_device():
    vae = VAE(latent_dim=4, depth=4).to(META)
    frames = np.zeros((2, 3, 64, 64), np.uint8)
    x = envs.preprocess(devices.to_device(frames, META))
    with devices.autocast(META, True):
        vae.loss(x)["loss"].backward()
    series = {"mu": np.zeros((40, 4), np.float32), "logvar": np.zeros((40, 4), np.float32),
              "action": np.zeros((40, 3), np.float32), "reward": np.zeros(40, np.float32),
              "done": np.zeros(40, bool), "starts": np.array([0, 20, 40])}
    b = wm.sequence_batch(series, 3, 5, np.random.default_rng(0), device=META)
    assert all(v.device == META for v in b.values())
    m = MDNRNN(4, 3, 8, 2).to(META)
    m.loss(b["z"], b["action"], b["z_next"], reward=b["reward"], done=b["done"])["loss"].backward()


def test_the_dream_steps_on_ms_device():
    m = MDNRNN(4, 3, 8, 2).to(META)
    z, state = torch.zeros(6, 4, device=META), m.initial_state(6)
    out, state = m.step(z, torch.zeros(6, 3, device=META), state)
    z = sample_mixture(out, temperature=1.15)
    assert z.device == META and state[0].device == META


def test_a_generator_on_another_device_is_refused_with_a_clear_error():
    cpu_gen = torch.Generator().manual_seed(0)
    with pytest.raises(devices.DeviceError, match="generator is on cpu"):
        cem_plan(lambda a: a.sum((1, 2)), horizon=2, action_dim=1, candidates=4, top_k=2,
                 iterations=1, device=META, generator=cpu_gen)
    with pytest.raises(devices.DeviceError, match="generator is on cpu"):
        random_shooting(lambda a: a.sum((1, 2)), horizon=2, action_dim=1, candidates=4,
                        device=META, generator=cpu_gen)


def test_unknown_or_missing_devices_fail_with_a_clear_error(monkeypatch):
    with pytest.raises(devices.DeviceError, match="Unknown device 'tpu7'"):
        devices.resolve("tpu7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(devices.DeviceError, match="sees no CUDA GPU"):
        devices.resolve("cuda")
    monkeypatch.setenv("WMLIB_DEVICE", "cpu")
    monkeypatch.setattr(devices, "_CHOSEN", None)
    assert devices.default_device() == torch.device("cpu")


def test_setup_makes_its_device_the_sessions_default(monkeypatch):
    from wmlib import profiles

    monkeypatch.setattr(devices, "_CHOSEN", None)
    ctx = profiles.setup(profile="smoke", device="cpu", verbose=False)
    assert devices.default_device() == ctx.device == torch.device("cpu")
    agent = mpc.LearnedModelAgent(mpc.CONFIGS["smoke"], 5, 1)
    assert agent.device == ctx.device


def test_cli_rejects_an_unavailable_device(monkeypatch):
    from wmlib.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_CHOSEN", None)
    assert main(["info", "--device", "cuda"]) == 2


def test_autocast_is_off_where_the_device_has_no_bf16():
    import contextlib

    assert isinstance(devices.autocast(META, True), contextlib.nullcontext)
    assert isinstance(devices.autocast("cpu", False), contextlib.nullcontext)
    on_cpu = devices.autocast("cpu", True)
    assert isinstance(on_cpu, torch.autocast) == devices.bf16_supported(torch.device("cpu"))


# -- checkpoints across device types -------------------------------------------------------

_FAKE_GPU = {"on": False}


def _tag_as_gpu(storage):
    """Claim, while saving, that every CPU tensor lives on a GPU (as on a Colab machine)."""
    return "cuda:0" if _FAKE_GPU["on"] and storage.device.type == "cpu" else None


@pytest.fixture
def saved_as_if_on_a_gpu():
    from torch import serialization

    serialization.register_package(0, _tag_as_gpu, lambda obj, location: None)
    _FAKE_GPU["on"] = True
    try:
        yield
    finally:
        _FAKE_GPU["on"] = False
        serialization._package_registry[:] = [
            p for p in serialization._package_registry if p[1] is not _tag_as_gpu]


def test_a_run_saved_on_a_gpu_resumes_on_the_cpu(tmp_path, saved_as_if_on_a_gpu):
    from wmlib.training import History, load_checkpoint, save_checkpoint

    model = planet.PlaNet(SMOKE, action_size=1)
    optim = torch.optim.Adam(model.parameters())
    model.loss(*model.prepare(replay_batch()))[0].backward()
    optim.step()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, SMOKE, 3, {"model": model, "optim": optim}, History())
    _FAKE_GPU["on"] = False
    if not torch.cuda.is_available():  # the file really claims a GPU: a plain load fails
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=False)
    fresh = planet.PlaNet(SMOKE, action_size=1)
    fresh_optim = torch.optim.Adam(fresh.parameters())
    state = load_checkpoint(path, SMOKE, {"model": fresh, "optim": fresh_optim})
    assert state["step"] == 3
    for a, b in zip(model.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b)
    assert all(t.device.type == "cpu" for s in fresh_optim.state.values() for t in s.values())


def test_mppi_plans_on_the_objectives_device():
    from wmlib.planners import mppi_plan

    model = MLPDynamics(5, 1, 16).to(META)
    obs = torch.zeros(5, device=META)
    a = mppi_plan(lambda x: model.returns(obs, x), horizon=3, action_dim=1, candidates=10,
                  top_k=2, iterations=2, device=META)
    assert a.device == META


@pytest.mark.parametrize("optimizer", ["gauss-newton", "adam"])
def test_latent_collocation_and_collodreamers_losses_run_on_the_models_device(optimizer):
    from wmlib.agents.collodreamer import CONFIGS as COLLO
    from wmlib.agents.collodreamer import ColloDreamer, latent_problem, mean_features
    from wmlib.planners.collocation import LatCoConfig, LatCoPlanner

    cfg = dataclasses.replace(COLLO["smoke"], augmented=0.1)
    model = ColloDreamer(cfg, action_size=1).to(META).eval()
    z0 = mean_features(model.world.dynamics.initial(1))[0]
    planner = LatCoPlanner(LatCoConfig(horizon=3, iterations=1, warm_iterations=1,
                                       optimizer=optimizer), 1,
                           device=META)
    calls = []
    action = planner(latent_problem(model.world, model.value, 0.99), z0,
                     on_iteration=lambda z, a: calls.append(z.device))
    action = planner(latent_problem(model.world, model.value, 0.99), z0)   # warm-started
    assert action.device == META and action.shape == (1,) and calls == [META]
    z, a, lam, _ = planner.last
    model.plan_value_loss(z, a).backward()
    model.augmented_loss(z, a, lam).backward()
    _, _, posteriors = model.world.loss(*model.world.prepare(replay_batch()))
    model.replay_value_loss(posteriors).backward()
    assert all(p.grad is None or p.grad.device == META for p in model.parameters())
