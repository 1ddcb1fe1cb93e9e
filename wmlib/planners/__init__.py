"""Planners: search action sequences a_{t:t+H} that maximise the predicted return R.

Every planner takes ``objective(actions) -> returns``, where ``actions`` is a batch
``(J, H, action_dim)`` tensor and ``returns`` is ``(J,)``. The objective can be the true
simulator (chapter 1), a learned MLP model (chapter 1) or a latent model (chapter 3 on).
"""

from wmlib.planners.cem import cem_plan
from wmlib.planners.shooting import random_shooting

__all__ = ["cem_plan", "random_shooting"]
