"""Chapter 6 throughput: one full update (world model, actor, value) of Dreamer, Soft-BIRD and
BIRD at the same size, per profile, from the state and from pixels, in one run, with the ratio
to Dreamer's. BIRD adds the log-likelihood of each imagined roll-out (the confidence weights)
and the policy's entropy on the batch's posterior states (a 100-sample estimate for the
tanh-Gaussian); Soft-BIRD adds the entropy at every imagined state. Printed, never asserted.

Run: python benchmarks/bench_ch06.py [--profiles smoke quick gpu full] [--device cuda]
         [--threads N] [--repeats R]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ch04 import batch_for  # noqa: E402  (the same synthetic replay batch)


def measure(cfg, device: str, repeats: int) -> dict[str, float]:
    """Seconds per update (`DreamerAgent.update`'s three steps) of each agent on one batch."""
    from torch import nn

    from wmlib.agents.bird import BIRD, bird_config, soft_bird
    from wmlib.agents.dreamer import Dreamer, step
    from wmlib.agents.planet import OBS_SHAPE
    from wmlib.bench import time_per_call

    obs_shape = OBS_SHAPE if cfg.pixels else (5,)
    batch = batch_for(cfg, obs_shape, np.random.default_rng(0))
    bird_cfg = bird_config(cfg)
    agents = {"Dreamer": (Dreamer, cfg), "Soft-BIRD": (BIRD, soft_bird(bird_cfg)),
              "BIRD": (BIRD, bird_cfg)}
    def updater(cls, c):
        torch.manual_seed(0)
        d = cls(c, 1, obs_shape).to(device)
        world = nn.ModuleList(d.world_modules())
        opts = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in (world, d.actor, d.value)]

        def update():
            loss, _, post = d.world_loss(batch)
            step(opts[0], loss, world, c.grad_clip)
            if c.imagine_batch:
                post = post.map(lambda x: x[:, :c.imagine_batch])
            actor_loss, imagined, lam, weights = d.actor_loss(post)
            step(opts[1], actor_loss, d.actor, c.grad_clip)
            step(opts[2], d.value_loss(imagined, lam, weights), d.value, c.grad_clip)
        return update

    return {name: time_per_call(updater(cls, c), repeats, torch.device(device))
            for name, (cls, c) in agents.items()}


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
                base = t["Dreamer"]
                cells = ", ".join(f"{k} {v * 1000:8.1f} ms (x{v / base:.2f})" for k, v in t.items())
                print(f"[{profile:5}] {device:4} {'state ' if state else 'pixels'} "
                      f"B={cfg.batch_size} x L={cfg.chunk_length}, H={cfg.horizon}: {cells}",
                      flush=True)


if __name__ == "__main__":
    main()
