"""The true simulator as a planning model ("CEM + true simulator" in PlaNet's Table 1).

Planning needs the returns of many action sequences from the current state. We save the MuJoCo
state of the running episode and let ``mujoco.rollout`` (C++, multithreaded) simulate every
candidate from it; the reward of each visited state is then computed in NumPy with
dm_control's own ``rewards.tolerance``. Only tasks whose reward is written here are supported.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import torch
from dm_control.utils.rewards import tolerance
from mujoco import rollout

STATE_SPEC = mujoco.mjtState.mjSTATE_FULLPHYSICS


def cartpole_reward(qpos: np.ndarray, qvel: np.ndarray, ctrl: np.ndarray,
                    sparse: bool = False) -> np.ndarray:
    """dm_control's cartpole reward (``Balance._get_reward``) for arrays of states (..., nq)."""
    cart, cos = qpos[..., 0], np.cos(qpos[..., 1])
    if sparse:
        return tolerance(cart, (-0.25, 0.25)) * tolerance(cos, (0.995, 1))
    upright = (cos + 1) / 2
    centered = (1 + tolerance(cart, margin=2)) / 2
    small_control = (4 + tolerance(ctrl[..., 0], margin=1, value_at_margin=0,
                                   sigmoid="quadratic")) / 5
    small_velocity = (1 + tolerance(qvel[..., 1], margin=5)) / 2
    return upright * centered * small_control * small_velocity


REWARDS = {
    ("cartpole", "swingup"): cartpole_reward,
    ("cartpole", "balance"): cartpole_reward,
    ("cartpole", "swingup_sparse"): lambda q, v, c: cartpole_reward(q, v, c, sparse=True),
    ("cartpole", "balance_sparse"): lambda q, v, c: cartpole_reward(q, v, c, sparse=True),
}


class TrueSimulator:
    """``returns(actions)`` of action sequences ``(J, H, A)`` from the environment's current state.

    ``env`` is a ``wmlib.envs.make("dmc:...")`` environment; each planning step repeats its
    action ``action_repeat`` times, as the environment does.
    """

    def __init__(self, env, threads: int | None = None):
        dmc = env.unwrapped
        key = (getattr(dmc, "domain", None), getattr(dmc, "task_name", None))
        if key not in REWARDS:
            raise ValueError(f"The true-simulator planner has rewards for {sorted(REWARDS)}, not "
                             f"{key}. Add the task's reward to wmlib.truesim.REWARDS.")
        self.env, self.reward_fn = dmc, REWARDS[key]
        self.model = dmc.physics.model.ptr
        self.threads = threads or max(1, min(os.cpu_count() or 1, 16))
        self.datas = [mujoco.MjData(self.model) for _ in range(self.threads)]
        self.nq, self.nv = self.model.nq, self.model.nv

    def state(self) -> np.ndarray:
        """The full physics state of the running episode."""
        data = self.env.physics.data.ptr
        s = np.empty(mujoco.mj_stateSize(self.model, STATE_SPEC))
        mujoco.mj_getState(self.model, data, s, STATE_SPEC)
        return s

    def returns(self, actions, state: np.ndarray | None = None) -> torch.Tensor:
        """Sum of rewards of each sequence, simulated from ``state`` (default: now)."""
        a = actions.detach().cpu().numpy() if torch.is_tensor(actions) else np.asarray(actions)
        ctrl = np.repeat(a.astype(np.float64), self.env.action_repeat, axis=1)  # (J, H*k, A)
        s0 = self.state() if state is None else state
        states, _ = rollout.rollout(self.model, self.datas, s0[None], ctrl, persistent_pool=True)
        qpos = states[..., 1:1 + self.nq]                  # state = [time, qpos, qvel, ...]
        qvel = states[..., 1 + self.nq:1 + self.nq + self.nv]
        r = self.reward_fn(qpos, qvel, ctrl).sum(axis=1)
        return torch.as_tensor(r, dtype=torch.float32)

    __call__ = returns
