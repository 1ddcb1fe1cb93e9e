"""Synthetic data shared by the agents' learning tests."""

import numpy as np


def synthetic_batch(T=8, B=4, seed=0):
    """A bright square that the action moves left or right; reward = how far right it is."""
    g = np.random.default_rng(seed)
    obs = np.zeros((B, T, 3, 64, 64), np.uint8)
    actions = g.uniform(-1, 1, (B, T, 1)).astype(np.float32)
    actions[:, 0] = 0
    pos = np.clip(32 + 12 * np.cumsum(actions[..., 0], 1), 4, 56).astype(int)
    for b in range(B):
        for t in range(T):
            obs[b, t, :, 28:36, pos[b, t] - 4:pos[b, t] + 4] = 255
    rewards = ((pos - 32) / 24).astype(np.float32)
    return {"obs": obs, "action": actions, "reward": rewards}
