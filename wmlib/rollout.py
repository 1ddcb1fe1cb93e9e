"""Run one episode with any policy and return it in replay's aligned format."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from wmlib.progress import tqdm


def run_episode(env, act: Callable[[np.ndarray], np.ndarray], seed: int | None = None,
                render_size: int | None = None, progress: bool | str = False,
                max_steps: int | None = None, stop: Callable[[float], bool] | None = None,
                keep_obs: bool = True) -> tuple[dict[str, np.ndarray], dict]:
    """Roll out ``act(obs) -> action`` until the episode ends.

    ``seed`` seeds the environment's reset and its action space, so that an episode of random
    actions (`random_policy`) is the same whenever it is run with the same seed.

    The episode also ends after ``max_steps`` steps, or after a step for which
    ``stop(reward)`` is true (chapter 2 stops a car that has found no new tile for a while).
    Returns ``(episode, info)``: ``episode`` holds ``obs``, ``action``, ``reward`` aligned as
    :mod:`wmlib.replay` expects (without ``obs`` when ``keep_obs=False``, for hot loops that
    only need the return); ``info`` holds the episode ``return``, its ``steps``, ``seconds``,
    ``terminated`` and, when ``render_size`` is given, ``frames`` (``(T+1, S, S, 3)`` uint8).
    """
    obs, _ = env.reset(seed=seed)
    if seed is not None:
        env.action_space.seed(seed)  # random actions replay with the episode's seed too
    zero = np.zeros(env.action_space.shape, np.float32)
    observations, actions, rewards = [obs] if keep_obs else None, [zero], [0.0]
    frames = [env.unwrapped.render(render_size)] if render_size else None
    start, total = time.time(), 0.0
    bar = tqdm(desc=progress if isinstance(progress, str) else "episode", disable=not progress,
               leave=False, unit="step")
    while True:
        action = np.asarray(act(obs), np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if keep_obs:
            observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        if frames is not None:
            frames.append(env.unwrapped.render(render_size))
        if progress:
            bar.update(1)
            bar.set_postfix(ret=f"{total:.1f}")
        if (terminated or truncated or (max_steps and len(rewards) > max_steps)
                or (stop is not None and stop(reward))):
            break
    bar.close()
    episode = {"action": np.stack(actions), "reward": np.asarray(rewards, np.float32)}
    if keep_obs:
        episode = {"obs": np.stack(observations), **episode}
    info = {"return": float(total), "steps": len(rewards) - 1,
            "seconds": time.time() - start, "terminated": bool(terminated)}
    if frames is not None:
        info["frames"] = np.stack(frames)
    return episode, info


def random_policy(env, seed: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Uniform random actions from the environment's action space. With ``seed`` the action
    space's own generator is seeded (``env.reset(seed=...)`` does not seed it; `run_episode`
    with a seed does), so the same ``seed`` replays the same actions."""
    if seed is not None:
        env.action_space.seed(seed)
    return lambda obs: env.action_space.sample()
