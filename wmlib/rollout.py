"""Run one episode with any policy and return it in replay's aligned format."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm


def run_episode(env, act: Callable[[np.ndarray], np.ndarray], seed: int | None = None,
                render_size: int | None = None, progress: bool | str = False,
                max_steps: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Roll out ``act(obs) -> action`` until the episode ends.

    Returns ``(episode, info)``: ``episode`` holds ``obs``, ``action``, ``reward`` aligned as
    :mod:`wmlib.replay` expects; ``info`` holds the episode ``return``, its ``steps``,
    ``seconds`` and, when ``render_size`` is given, ``frames`` (``(T+1, S, S, 3)`` uint8).
    """
    obs, _ = env.reset(seed=seed)
    zero = np.zeros(env.action_space.shape, np.float32)
    observations, actions, rewards = [obs], [zero], [0.0]
    frames = [env.unwrapped.render(render_size)] if render_size else None
    start = time.time()
    bar = tqdm(desc=progress if isinstance(progress, str) else "episode", disable=not progress,
               leave=False, unit="step")
    while True:
        action = np.asarray(act(obs), np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        if frames is not None:
            frames.append(env.unwrapped.render(render_size))
        bar.update(1)
        bar.set_postfix(ret=f"{sum(rewards):.1f}")
        if terminated or truncated or (max_steps and len(rewards) > max_steps):
            break
    bar.close()
    episode = {"obs": np.stack(observations), "action": np.stack(actions),
               "reward": np.asarray(rewards, np.float32)}
    info = {"return": float(np.sum(rewards)), "steps": len(rewards) - 1,
            "seconds": time.time() - start, "terminated": bool(terminated)}
    if frames is not None:
        info["frames"] = np.stack(frames)
    return episode, info


def random_policy(env) -> Callable[[np.ndarray], np.ndarray]:
    """Uniform random actions from the environment's action space."""
    return lambda obs: env.action_space.sample()
