"""wmlib: the library behind "World Models, the book".

Chapter by chapter: ``wmlib.planners`` (1: random shooting, CEM), ``wmlib.truesim`` and
``wmlib.models.mlp_dynamics`` (1: planning with the simulator and with a learned model), and the
shared spine: ``wmlib.profiles`` (smoke/quick/full), ``wmlib.envs``, ``wmlib.replay``,
``wmlib.training``, ``wmlib.viz``, ``wmlib.results``.
"""

__version__ = "0.1.0"

from wmlib.render import ensure_backend  # noqa: E402

ensure_backend(strict=False)  # choose MUJOCO_GL before anything imports dm_control

from wmlib.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()  # reuse freed buffers instead of fresh pages at every step (wmlib.allocator)

from wmlib.profiles import PROFILES, pick, setup  # noqa: E402

__all__ = ["PROFILES", "pick", "setup", "__version__"]
