"""Chapter 4 throughput: Dreamer's world-model update, imagination (H steps from every posterior
state of the batch, with the actor) and actor-critic update, per profile, from the state and
from pixels, on the CPU and (when there is one) on the GPU; beside PlaNet's model update of the
same batch size in the same run. Printed, never asserted.

Run: python benchmarks/bench_ch04.py [--profiles smoke quick gpu full] [--device cuda]
         [--threads N] [--repeats R]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch


def batch_for(cfg, obs_shape, rng) -> dict:
    B, T = cfg.batch_size, cfg.chunk_length
    obs = (rng.integers(0, 256, (B, T, *obs_shape), dtype=np.uint8) if cfg.pixels
           else rng.normal(size=(B, T, *obs_shape)).astype(np.float32))
    return {"obs": obs, "action": rng.uniform(-1, 1, (B, T, 1)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32),
            "discount": np.ones((B, T), np.float32)}


def measure(cfg, device: str, repeats: int) -> dict[str, float]:
    """Seconds per world-model update, per imagination (forward only), per actor-critic update
    (imagination, both losses, both steps), and per PlaNet update of the same batch."""
    from torch import nn

    from wmlib.agents.dreamer import Dreamer, step
    from wmlib.agents.planet import OBS_SHAPE, PlaNet, PlaNetConfig
    from wmlib.bench import time_per_call

    torch.manual_seed(0)
    obs_shape = OBS_SHAPE if cfg.pixels else (5,)
    d = Dreamer(cfg, 1, obs_shape).to(device)
    world = nn.ModuleList(d.world_modules())
    opts = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in (world, d.actor, d.value)]
    batch = batch_for(cfg, obs_shape, np.random.default_rng(0))
    _, _, post = d.world_loss(batch)
    post = post.detach()
    if cfg.imagine_batch:  # as DreamerAgent.update does
        post = post.map(lambda x: x[:, :cfg.imagine_batch])

    def world_update():
        step(opts[0], d.world_loss(batch)[0], world, cfg.grad_clip)

    def imagine():
        with torch.no_grad():
            d.imagine(post)

    def actor_critic():
        loss, imagined, lam, weights = d.actor_loss(post)
        step(opts[1], loss, d.actor, cfg.grad_clip)
        step(opts[2], d.value_loss(imagined, lam, weights), d.value, cfg.grad_clip)

    # PlaNet's update of the same batch and model sizes (its own loss, no behaviour)
    pcfg = PlaNetConfig(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(PlaNetConfig)})
    planet = PlaNet(pcfg, 1, obs_shape).to(device)
    popt = torch.optim.Adam(planet.parameters(), lr=1e-4)

    def planet_update():
        loss, _, _ = planet.loss(*planet.prepare(batch))
        step(popt, loss, planet, cfg.grad_clip)

    dev = torch.device(device)
    return {name: time_per_call(fn, repeats, dev) for name, fn in
            (("world model", world_update), ("imagination", imagine),
             ("actor-critic", actor_critic), ("PlaNet update", planet_update))}


def main() -> None:
    from wmlib.agents.dreamer import configs
    from wmlib.bench import profile_benchmark_args

    args, devices = profile_benchmark_args(__doc__)
    for device in devices:
        for profile in args.profiles:
            for state in (True, False):
                cfg = configs(state)[profile]
                slow = device == "cpu" and profile in ("gpu", "full") and not state
                t = measure(cfg, device, 1 if slow else args.repeats)
                total = t["world model"] + t["actor-critic"]
                print(f"[{profile:5}] {device:4} {'state ' if state else 'pixels'} "
                      f"B={cfg.batch_size} x L={cfg.chunk_length}, H={cfg.horizon}, belief "
                      f"{cfg.deter_size}, units {cfg.units}: world model "
                      f"{t['world model'] * 1000:8.1f} ms, imagination "
                      f"{t['imagination'] * 1000:7.1f} ms, actor-critic "
                      f"{t['actor-critic'] * 1000:7.1f} ms, Dreamer update {total * 1000:8.1f} ms;"
                      f" PlaNet update of the same size {t['PlaNet update'] * 1000:8.1f} ms",
                      flush=True)


if __name__ == "__main__":
    main()
