"""Chapter 2 throughput, printed (never asserted): python benchmarks/bench_ch02.py [--quick]

- CarRacing steps/s (Gymnasium's rendering and wmlib's vectorised road drawing);
- V (the paper's VAE) training frames/s in float32 and under bfloat16 autocast, on the
  device (``--device``; default: the session's);
- M (LSTM 256, 5 mixtures) training sequences/s of 100 steps, on the device;
- the policy V + M + C in CarRacing: steps/s of one process, i.e. CMA-ES rollouts/s at a
  given episode length.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def per_second(fn, seconds: float, device=None) -> float:
    from wmlib.bench import synchronize

    device = device or torch.device("cpu")
    fn()  # warm up
    synchronize(device)
    n, start = 0, time.time()
    while time.time() - start < seconds:
        fn()
        n += 1
    synchronize(device)
    return n / (time.time() - start)


def descend(opt, loss) -> None:
    """One optimiser step on ``loss``: the update every training benchmark times."""
    opt.zero_grad()
    loss.backward()
    opt.step()


def main(seconds: float = 5.0, threads: int = 1, device=None) -> None:
    from wmlib import devices, envs
    from wmlib.agents import world_models as wm
    from wmlib.results import hardware

    if threads:
        torch.set_num_threads(threads)
    dev = devices.resolve(device)
    cfg = wm.CONFIGS["full"]
    print(f"hardware: {hardware()}; torch threads {torch.get_num_threads()}; device {dev}")
    for name, env in [("gymnasium rendering", envs.make(cfg.env_id)),
                      ("wmlib fast rendering", wm.make_env(cfg))]:
        env.reset(seed=0)
        sps = per_second(lambda env=env: env.step(np.array([0.0, 0.3, 0.0], np.float32)),
                         seconds)
        print(f"CarRacing-v3, {name:20}: {sps:7.1f} steps/s")

    vae = wm.make_vae(cfg).to(dev)
    opt = torch.optim.Adam(vae.parameters(), 1e-4)
    x = torch.rand(64, 3, 64, 64, device=dev) - 0.5
    for bf16 in (False, True):
        def vae_step(bf16=bf16):
            with devices.autocast(dev, bf16):
                loss = vae.loss(x)["loss"]
            descend(opt, loss)
        print(f"V training on {dev}, batch 64, {'bf16' if bf16 else 'fp32':4}: "
              f"{64 * per_second(vae_step, seconds, dev):7.1f} frames/s")

    m = wm.make_mdnrnn(cfg).to(dev)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    z, a = torch.randn(32, 100, 32, device=dev), torch.rand(32, 100, 3, device=dev)
    r, done = torch.randn(32, 100, device=dev), torch.zeros(32, 100, device=dev)

    def m_step():
        descend(opt, m.loss(z, a, z, reward=r, done=done)["loss"])
    print(f"M training on {dev}, 32 x 100 steps: "
          f"{32 * per_second(m_step, seconds, dev):7.1f} sequences/s")

    env = wm.make_env(cfg)
    # The policy runs where CMA-ES runs it: in CPU worker processes.
    policy = wm.WorldModelsPolicy(vae.cpu(), m.cpu(), wm.make_controller(cfg))
    obs, _ = env.reset(seed=0)

    def policy_step():
        nonlocal obs
        obs, *_ = env.step(policy(obs))
    sps = per_second(policy_step, seconds)
    print(f"V + M + C in CarRacing, one process: {sps:7.1f} steps/s = "
          f"{sps / 1000:.3f} full episodes/s, {sps / 300:.3f} 300-step CMA-ES rollouts/s "
          "(times the number of workers on free cores)")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (0: torch's default; the quick profile uses 1)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: the session's)")
    a = p.parse_args()
    main(a.seconds, a.threads, a.device)
