"""Headless rendering: choose MuJoCo's OpenGL backend before dm_control is imported.

dm_control reads ``MUJOCO_GL`` once, when it is first imported. :func:`ensure_backend` sets it
(EGL first, then OSMesa) unless the user already did, and :func:`check_rendering` renders one
frame so that a broken set-up fails early with a message that says what to install.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

BACKENDS = ("egl", "osmesa", "glfw")
_LIBS = {"egl": "EGL", "osmesa": "OSMesa", "glfw": "glfw"}
INSTALL_HINT = (
    "Headless rendering needs an OpenGL backend for MuJoCo. On Debian/Ubuntu install EGL with\n"
    "    sudo apt-get install -y libegl1 libegl-mesa0 libgl1-mesa-dri\n"
    "or OSMesa with\n"
    "    sudo apt-get install -y libosmesa6\n"
    "then set MUJOCO_GL=egl (or osmesa) before importing dm_control. "
    "In Colab, run the notebook's first cell (it sets MUJOCO_GL=egl)."
)


class RenderingError(RuntimeError):
    """No working OpenGL backend for MuJoCo."""


def available_backends() -> list[str]:
    """Backends whose shared library can be found on this machine (a cheap check, no context)."""
    return [b for b in BACKENDS[:2] if ctypes.util.find_library(_LIBS[b])]


def ensure_backend(strict: bool = True) -> str:
    """Set ``MUJOCO_GL`` (and PyOpenGL's platform) if unset; return the backend in force.

    ``import wmlib`` calls this with ``strict=False``, so that importing wmlib before dm_control
    is all a notebook needs; with ``strict=True`` a machine without EGL or OSMesa gets an error
    that says what to install.
    """
    chosen = os.environ.get("MUJOCO_GL")
    if not chosen:
        found = available_backends()
        if not found:
            if "dm_control" in sys.modules or not strict:
                return "unset"
            raise RenderingError("No EGL or OSMesa library found.\n" + INSTALL_HINT)
        chosen = found[0]
        if "dm_control" not in sys.modules:
            os.environ["MUJOCO_GL"] = chosen
    if chosen in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", chosen)
    return chosen


def check_rendering(size: int = 64):
    """Render one frame of cartpole; return its shape or raise :class:`RenderingError`."""
    backend = ensure_backend()
    try:
        from dm_control import suite

        env = suite.load("cartpole", "swingup")
        env.reset()
        frame = env.physics.render(size, size, camera_id=0)
    except Exception as e:  # the GL stack fails in many ways; all of them mean the same here
        raise RenderingError(
            f"Rendering with MUJOCO_GL={backend} failed: {type(e).__name__}: {e}\n" + INSTALL_HINT
        ) from e
    return frame.shape
