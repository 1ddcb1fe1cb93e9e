"""Planners: search action sequences a_{t:t+H} that maximise the predicted return R.

Every planner takes ``objective(actions) -> returns``, where ``actions`` is a batch
``(J, H, action_dim)`` tensor and ``returns`` is ``(J,)``. The objective can be the true
simulator (chapter 1), a learned MLP model (chapter 1) or a latent model (chapter 3 on).

Latent collocation (chapter 5, `wmlib.planners.collocation`) plans states and actions together
and so takes a `LatentProblem` (transition, reward, value) instead of a return function.
"""

from wmlib.planners.cem import cem_plan
from wmlib.planners.mppi import mppi_plan
from wmlib.planners.shooting import random_shooting

__all__ = ["cem_plan", "mppi_plan", "random_shooting"]
