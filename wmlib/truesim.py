"""The true simulator as a planning model ("CEM + true simulator" in PlaNet's Table 1).

Planning needs the returns of many action sequences from the current state. We save the MuJoCo
state of the running episode and let ``mujoco.rollout`` (C++, multithreaded) simulate every
candidate from it; the reward of each visited state is then computed in NumPy with
dm_control's own ``rewards.tolerance``. Only tasks whose reward is written here are supported
(cartpole's four, reacher's two).
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


def reacher_reward(qpos: np.ndarray, target: np.ndarray, radii: float,
                   lengths: tuple[float, float] = (0.12, 0.12)) -> np.ndarray:
    """dm_control's reacher reward (``Reacher.get_reward``) for arrays of joint angles
    (..., 2): 1 while the finger lies within ``radii`` (target radius + finger radius) of the
    ``target`` (x, y), else exactly 0 (``tolerance`` with no margin). The finger's position is
    the two-link arm's forward kinematics: ``l1 (cos q1, sin q1) + l2 (cos(q1 + q2), ...)``
    with ``lengths`` the distances shoulder-wrist and wrist-finger (0.12 and 0.12 in
    reacher.xml)."""
    l1, l2 = lengths
    q1, q12 = qpos[..., 0], qpos[..., 0] + qpos[..., 1]
    finger = np.stack([l1 * np.cos(q1) + l2 * np.cos(q12), l1 * np.sin(q1) + l2 * np.sin(q12)],
                      -1)
    dist = np.linalg.norm(finger - np.asarray(target)[:2], axis=-1)
    return tolerance(dist, (0, radii))


def _reacher(physics):
    """The reacher reward of ``physics``'s current episode, read at each call (the task moves
    the target and sets its size at every reset)."""
    named = physics.named.model
    lengths = (float(named.body_pos["hand", "x"]), float(named.body_pos["finger", "x"]))

    def reward(qpos, qvel, ctrl):
        radii = float(named.geom_size[["target", "finger"], 0].sum())
        return reacher_reward(qpos, named.geom_pos["target", :2].copy(), radii, lengths)
    return reward


# Tasks whose reward depends on the episode's physics (built from the environment's physics).
PHYSICS_REWARDS = {("reacher", "easy"): _reacher, ("reacher", "hard"): _reacher}

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
        if key in PHYSICS_REWARDS:
            self.reward_fn = PHYSICS_REWARDS[key](dmc.physics)
        elif key in REWARDS:
            self.reward_fn = REWARDS[key]
        else:
            known = sorted([*REWARDS, *PHYSICS_REWARDS])
            raise ValueError(f"The true-simulator planner has rewards for {known}, not "
                             f"{key}. Add the task's reward to wmlib.truesim.REWARDS.")
        self.env = dmc
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
