"""Chapter 3 throughput: PlaNet's model update time and latent-CEM planning time per action,
for each profile, on the CPU and (when there is one) on the GPU. Printed, never asserted.

Run: python benchmarks/bench_ch03.py [--profiles smoke quick gpu full] [--device cuda]
         [--threads N] [--repeats R]
(default devices: the CPU, and CUDA when there is one).
"""

from __future__ import annotations

import argparse

import torch


def bench(profile: str, device: str, repeats: int) -> None:
    from wmlib import devices
    from wmlib.agents.planet import CONFIGS, PlaNet
    from wmlib.bench import time_per_call

    cfg = CONFIGS[profile]
    torch.manual_seed(0)
    model = PlaNet(cfg, action_size=1).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps)
    T, B = cfg.chunk_length, cfg.batch_size
    obs = torch.rand(T, B, 3, 64, 64, device=device) - 0.5
    actions = torch.rand(T, B, 1, device=device) * 2 - 1
    rewards = torch.rand(T, B, device=device)

    def update():
        loss, _, _ = model.loss(obs, actions, rewards)
        optim.zero_grad()
        loss.backward()
        optim.step()

    state = model.dynamics.initial(1)
    gen = devices.generator(device, 0)
    dev = torch.device(device)
    t_update = time_per_call(update, repeats, dev)
    t_plan = time_per_call(lambda: model.plan(state, gen), repeats, dev)
    rounds = t_update * cfg.collect_interval + t_plan * 125
    print(f"[{profile:5}] {device:4} update (B={B} x L={T}, depth {cfg.depth}, belief "
          f"{cfg.deter_size}, overshooting D={cfg.overshooting}, bf16={cfg.bf16}): "
          f"{t_update * 1000:8.1f} ms | CEM (H={cfg.horizon}, "
          f"J={cfg.candidates}, K={cfg.top_k}, I={cfg.iterations}): {t_plan * 1000:7.1f} ms per "
          f"action | one round of Algorithm 1 (C={cfg.collect_interval} updates + 125 planned "
          f"actions, without the simulator): {rounds:6.0f} s", flush=True)


def main() -> None:
    from wmlib.results import hardware

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profiles", nargs="*", default=["smoke", "quick", "gpu", "full"])
    p.add_argument("--device", nargs="*", default=None, help="default: cpu, and cuda if any")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"hardware: {hardware()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    from wmlib.devices import resolve

    names = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in [str(resolve(d)) for d in names]:
        for profile in args.profiles:
            bench(profile, device, args.repeats if profile != "full" or device != "cpu" else 1)


if __name__ == "__main__":
    main()
