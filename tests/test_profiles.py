import subprocess
import sys

import numpy as np
import pytest
import torch

from wmlib import profiles


def test_unknown_profile_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("WMLIB_PROFILE", "fast")
    with pytest.raises(profiles.ProfileError, match="smoke, quick, gpu, full"):
        profiles.current_profile()
    with pytest.raises(profiles.ProfileError, match="'huge'"):
        profiles.setup(profile="huge", verbose=False)


def test_profile_from_env_and_automatic(monkeypatch):
    monkeypatch.setenv("WMLIB_PROFILE", "full")
    assert profiles.current_profile() == "full"
    monkeypatch.delenv("WMLIB_PROFILE")
    assert profiles.current_profile() == ("gpu" if torch.cuda.is_available() else "quick")
    assert profiles.pick({"smoke": 1, "quick": 2, "gpu": 3, "full": 4}, "smoke") == 1
    with pytest.raises(profiles.ProfileError, match="no 'gpu' entry"):
        profiles.pick({"smoke": 1, "quick": 2, "full": 4}, "gpu")


def test_the_automatic_profile_on_a_gpu_is_the_one_hour_profile_never_full(monkeypatch):
    """With a CUDA device chosen, the automatic profile is `gpu` (one Colab session), not the
    papers' `full`; on the CPU it is `quick`."""
    from wmlib import devices

    monkeypatch.delenv("WMLIB_PROFILE", raising=False)
    monkeypatch.setattr(devices, "_CHOSEN", torch.device("cuda"))
    assert profiles.current_profile() == "gpu"
    monkeypatch.setattr(devices, "_CHOSEN", torch.device("cpu"))
    assert profiles.current_profile() == "quick"


def test_every_agent_has_a_config_for_every_profile():
    from wmlib.agents import mpc, planet, planet_variants, world_models

    for configs in (mpc.CONFIGS, planet.CONFIGS, planet_variants.EXPERIMENTS, world_models.CONFIGS):
        assert set(configs) == set(profiles.PROFILES)


def test_long_runs_of_the_gpu_profile_carry_a_time_budget():
    from wmlib.agents import planet

    assert planet.CONFIGS["gpu"].budget_s is not None
    assert planet.CONFIGS["gpu"].budget_s <= 60 * 60
    assert planet.CONFIGS["full"].budget_s is None


def test_setup_seeds_everything_and_prints(capsys):
    ctx = profiles.setup(profile="smoke", seed=7)
    a = (np.random.rand(), torch.rand(1).item())
    profiles.setup(profile="smoke", seed=7)
    assert a == (np.random.rand(), torch.rand(1).item())
    out = capsys.readouterr().out
    assert "profile: smoke" in out and "seed: 7" in out and "torch" in out
    assert ctx.device.type in ("cpu", "cuda")


def test_cli_rejects_unknown_profile():
    r = subprocess.run([sys.executable, "-m", "wmlib", "info", "--profile", "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Valid profiles: smoke, quick, gpu, full" in r.stderr
