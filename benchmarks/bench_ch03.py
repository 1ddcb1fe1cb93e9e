"""Chapter 3 throughput: PlaNet's model update time and latent-CEM planning time per action,
for each profile, on the CPU and (when there is one) on the GPU, each in one run for the plain
float32 path (every speed option off), each option alone, the profile's defaults and every
option on, with the ratios to the plain path. Printed, never asserted.

Run: python benchmarks/bench_ch03.py [--profiles smoke quick gpu full] [--device cuda]
         [--threads N] [--repeats R]
(default devices: the CPU, and CUDA when there is one).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

SPEED_OPTIONS = ("bf16", "channels_last", "plan_bf16", "decoder_matmul", "compile")


def plain(cfg):
    """The same configuration with every speed option off: the plain float32 path."""
    return dataclasses.replace(cfg, **{k: False for k in SPEED_OPTIONS})


def measure(cfg, device: str, repeats: int) -> tuple[float, float]:
    """Seconds per model update (from a uint8 replay batch: prepare, loss, backward, clip,
    Adam) and per planned action (latent CEM from a belief)."""
    from torch import nn

    from wmlib import devices
    from wmlib.agents.planet import PlaNet
    from wmlib.bench import time_per_call

    torch.manual_seed(0)
    model = PlaNet(cfg, action_size=1).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    T, B = cfg.chunk_length, cfg.batch_size
    rng = np.random.default_rng(0)
    batch = {"obs": rng.integers(0, 256, (B, T, 3, 64, 64), dtype=np.uint8),
             "action": rng.uniform(-1, 1, (B, T, 1)).astype(np.float32),
             "reward": rng.uniform(0, 1, (B, T)).astype(np.float32)}

    def update():
        loss, _, _ = model.loss(*model.prepare(batch))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optim.step()

    state = model.dynamics.initial(1)
    gen = devices.generator(device, 0)
    dev = torch.device(device)
    # planning is cheap next to an update: timed over at least 5 calls, since one call of a few
    # hundred milliseconds varies by 10-20% from run to run
    return (time_per_call(update, repeats, dev),
            time_per_call(lambda: model.plan(state, gen), max(repeats, 5), dev))


def bench(profile: str, device: str, repeats: int) -> None:
    from wmlib.agents.planet import CONFIGS
    from wmlib.devices import bf16_supported

    cfg = CONFIGS[profile]
    paths = {"plain fp32": plain(cfg)}
    for k in SPEED_OPTIONS:  # each option alone: what it buys by itself
        paths[f"{k} alone"] = dataclasses.replace(plain(cfg), **{k: True})
    paths["profile defaults"] = cfg
    paths["every option"] = dataclasses.replace(cfg, **{k: True for k in SPEED_OPTIONS})
    print(f"[{profile:5}] {device:4} B={cfg.batch_size} x L={cfg.chunk_length}, depth "
          f"{cfg.depth}, belief {cfg.deter_size}, D={cfg.overshooting}; CEM H={cfg.horizon} "
          f"J={cfg.candidates} K={cfg.top_k} I={cfg.iterations}; native bf16 on this device: "
          f"{bf16_supported(torch.device(device))} (autocast is skipped where it is not)",
          flush=True)
    base = None
    done: dict = {}
    for name, c in paths.items():
        opts = tuple(k for k in SPEED_OPTIONS if getattr(c, k))
        if opts in done:
            print(f"        {name:22}: same options as {done[opts]}")
            continue
        done[opts] = name
        u, p = measure(c, device, repeats)
        base = base or (u, p)
        rnd = u * cfg.collect_interval + p * 125
        print(f"        {name:22} ({', '.join(opts) or 'none'}): update {u * 1000:8.1f} ms "
              f"(x{base[0] / u:.2f}), CEM {p * 1000:7.1f} ms per action (x{base[1] / p:.2f}); "
              f"one round of Algorithm 1 (C={cfg.collect_interval} updates + 125 planned "
              f"actions, without the simulator) {rnd:6.0f} s", flush=True)


def main() -> None:
    from wmlib.bench import profile_benchmark_args

    args, devices = profile_benchmark_args(__doc__)
    for device in devices:
        for profile in args.profiles:
            bench(profile, device, args.repeats if profile != "full" or device != "cpu" else 1)


if __name__ == "__main__":
    main()
