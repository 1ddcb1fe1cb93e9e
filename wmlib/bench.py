"""Throughput figures, printed (never asserted): ``python -m wmlib bench``.

- environment steps per second on cartpole-swingup, proprioceptive and 64x64 pixels
  (control steps, i.e. with the action repeat of 8);
- true-simulator CEM and random-shooting planning time per action for each profile;
- learned-model CEM planning time per action for each profile, on the session's device
  (``--device``).
"""

from __future__ import annotations

import time

import numpy as np
import torch


def steps_per_second(env, seconds: float = 3.0) -> float:
    env.reset(seed=0)
    n, start = 0, time.time()
    while time.time() - start < seconds:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        n += 1
        if term or trunc:
            env.reset()
    return n / (time.time() - start)


def profile_benchmark_args(doc: str) -> tuple:
    """The command line of the per-profile benchmarks (``benchmarks/bench_ch03.py`` and
    later): ``--profiles``, ``--device`` (default: the CPU, and CUDA when there is one),
    ``--threads``, ``--repeats``. Sets the threads, prints the hardware and returns
    ``(args, devices)``."""
    import argparse

    from wmlib.devices import resolve
    from wmlib.results import hardware

    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--profiles", nargs="*", default=["smoke", "quick", "gpu", "full"])
    p.add_argument("--device", nargs="*", default=None, help="default: cpu, and cuda if any")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"hardware: {hardware()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    names = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return args, [str(resolve(d)) for d in names]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (GPU kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(fn, repeats: int = 3, device: torch.device | None = None) -> float:
    fn()  # warm up
    device = device or torch.device("cpu")
    synchronize(device)
    start = time.time()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.time() - start) / repeats


def main(profiles=("smoke", "quick", "gpu", "full"), device=None) -> None:
    from wmlib import devices, envs
    from wmlib.agents.mpc import CONFIGS, cem_policy, true_sim_policy
    from wmlib.models.mlp_dynamics import MLPDynamics
    from wmlib.results import hardware

    device = devices.resolve(device)
    print(f"hardware: {hardware()}; torch threads {torch.get_num_threads()}; device {device}")
    for pixels in (False, True):
        env = envs.make("dmc:cartpole-swingup", pixels=pixels)
        sps = steps_per_second(env)
        print(f"env cartpole-swingup pixels={pixels!s:5}: {sps:7.1f} control steps/s "
              f"({sps * env.unwrapped.action_repeat:7.0f} physics steps/s, action repeat "
              f"{env.unwrapped.action_repeat})")
    env = envs.make("dmc:cartpole-swingup", pixels=False)
    obs, _ = env.reset(seed=0)
    for profile in profiles:
        cfg = CONFIGS[profile]
        for planner in ("cem", "shooting"):
            act = true_sim_policy(env, planner, cfg)
            t = time_per_call(lambda act=act: act(obs), repeats=2)
            print(f"[{profile:5}] true-sim {planner:8}: {t * 1000:8.1f} ms per action "
                  f"({t * 1000 / 8:6.1f} ms per environment step at action repeat 8)")
        model = MLPDynamics(obs.shape[0], 1, cfg.hidden).to(device)
        act = cem_policy(lambda o, m=model: lambda a: m.returns(devices.to_device(o, device), a),
                         cfg, 1, device=device, candidates=cfg.model_candidates,
                         top_k=cfg.model_top_k, iterations=cfg.model_iterations_cem)
        t = time_per_call(lambda act=act: act(np.asarray(obs, np.float32)), device=device)
        print(f"[{profile:5}] learned-model cem on {device}: {t * 1000:8.1f} ms per action")


if __name__ == "__main__":
    main()
