import subprocess
import sys

import numpy as np
import pytest
import torch

from wmlib import profiles


def test_unknown_profile_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("WMLIB_PROFILE", "fast")
    with pytest.raises(profiles.ProfileError, match="smoke, quick, full"):
        profiles.current_profile()
    with pytest.raises(profiles.ProfileError, match="'huge'"):
        profiles.setup(profile="huge", verbose=False)


def test_profile_from_env_and_automatic(monkeypatch):
    monkeypatch.setenv("WMLIB_PROFILE", "full")
    assert profiles.current_profile() == "full"
    monkeypatch.delenv("WMLIB_PROFILE")
    assert profiles.current_profile() == ("full" if torch.cuda.is_available() else "quick")
    assert profiles.pick({"smoke": 1, "quick": 2, "full": 3}, "smoke") == 1


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
    assert "Valid profiles: smoke, quick, full" in r.stderr
