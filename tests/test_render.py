import os
import subprocess
import sys

import pytest

from wmlib import render


def test_rendering_works_headless():
    assert render.check_rendering(32) == (32, 32, 3)


def test_missing_backend_error_says_what_to_install():
    code = (
        "import ctypes.util, os\n"
        "os.environ.pop('MUJOCO_GL', None)\n"
        "ctypes.util.find_library = lambda name: None\n"
        "from wmlib.render import ensure_backend, RenderingError\n"
        "try:\n    ensure_backend()\nexcept RenderingError as e:\n    print(e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "apt-get install" in out.stdout and "libosmesa6" in out.stdout


def test_failed_render_is_wrapped(monkeypatch):
    from dm_control import suite

    def broken(*a, **k):
        raise RuntimeError("no GL context")

    monkeypatch.setattr(suite, "load", broken)
    with pytest.raises(render.RenderingError, match="MUJOCO_GL=.*no GL context"):
        render.check_rendering()
