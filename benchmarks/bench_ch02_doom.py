"""Chapter 2b throughput, printed (never asserted):
python benchmarks/bench_ch02_doom.py [--profile quick] [--seconds 5] [--threads 1]

- Take Cover: raw VizDoom steps/s and steps/s with World Models' frames (64x64);
- V (z of 64) training frames/s, on the device (``--device``; default: the session's);
- M (the profile's LSTM, 5 mixtures, windows across rollouts with restarts and without)
  training sequences/s, on the device;
- the dream: dream steps/s of one CMA-ES generation (population x rollouts in one batch);
- the policy V + M + C in the real game: steps/s of one process.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_ch02 import descend, per_second


def main(profile: str = "quick", seconds: float = 5.0, threads: int = 1, device=None) -> None:
    import gymnasium as gym

    from wmlib import devices, envs
    from wmlib.agents import world_models as wm
    from wmlib.agents import world_models_doom as doom
    from wmlib.dream import dream_returns
    from wmlib.results import hardware

    if threads:
        torch.set_num_threads(threads)
    dev = devices.resolve(device)
    cfg = doom.CONFIGS[profile]
    print(f"hardware: {hardware()}; torch threads {torch.get_num_threads()}; device {dev}; "
          f"profile {profile} (z {cfg.latent_dim}, LSTM {cfg.hidden})")

    env = wm.make_env(cfg)  # registers the Vizdoom ids
    raw = gym.make(envs.DOOM_IDS[cfg.env_id])
    for name, e, action in (("raw VizDoom (320x240)", raw, 0),
                            ("World Models' frames (64x64)", env, np.zeros(1, np.float32))):
        e.reset(seed=0)

        def step(e=e, action=action):
            if any(e.step(action)[2:4]):
                e.reset()
        print(f"Take Cover, {name:28}: {per_second(step, seconds):7.1f} steps/s")

    vae = wm.make_vae(cfg).to(dev)
    opt = torch.optim.Adam(vae.parameters(), 1e-3)
    x = torch.rand(cfg.vae_batch, 3, 64, 64, device=dev) - 0.5

    def vae_step():
        descend(opt, vae.loss(x)["loss"])
    print(f"V training on {dev}, batch {cfg.vae_batch}: "
          f"{cfg.vae_batch * per_second(vae_step, seconds, dev):7.1f} frames/s")

    m = wm.make_mdnrnn(cfg).to(dev)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    B, T = cfg.rnn_batch, cfg.rnn_seq_len
    z, a = torch.randn(B, T, cfg.latent_dim, device=dev), torch.rand(B, T, 1, device=dev)
    done = torch.zeros(B, T, device=dev)
    restart = torch.zeros(B, T, device=dev)
    restart[:, T // 2] = 1
    for label, flags in (("fused LSTM, no restarts", None),
                         ("step by step, restarts", restart)):
        def m_step(flags=flags):
            descend(opt, m.loss(z, a, z, done=done, restart=flags,
                                done_weight=cfg.done_weight)["loss"])
        print(f"M training on {dev}, {B} x {T} steps, {label:24}: "
              f"{B * per_second(m_step, seconds, dev):7.1f} sequences/s")

    n = cfg.dream_popsize * cfg.dream_rollouts
    params = np.random.default_rng(0).normal(0, 0.1, (cfg.dream_popsize,
                                                      wm.make_controller(cfg).num_params))
    z0 = torch.randn(cfg.dream_rollouts, cfg.latent_dim, device=dev)
    steps = 200
    with torch.no_grad():  # a never-dying M, so every dream runs all its steps
        m.done.bias.fill_(-30.0)
        m.done.weight.zero_()

    def generation():
        dream_returns(m, params, z0, temperature=1.15, steps=steps, low=cfg.action_low,
                      high=cfg.action_high, brake_clip=False, reward="survival")
    print(f"dream on {dev}, {cfg.dream_popsize} x {cfg.dream_rollouts} dreams in one batch: "
          f"{n * steps * per_second(generation, seconds, dev):9.0f} dream steps/s")

    policy = wm.WorldModelsPolicy(vae.cpu(), m.cpu(), wm.make_controller(cfg))
    obs, _ = env.reset(seed=0)

    def policy_step():
        nonlocal obs
        obs, _, terminated, truncated, _ = env.step(policy(obs))
        if terminated or truncated:
            policy.reset()
            obs, _ = env.reset()
    print(f"V + M + C in Take Cover, one process: {per_second(policy_step, seconds):7.1f} "
          "steps/s")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--profile", default="quick")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (0: torch's default; the quick profile uses 1)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: the session's)")
    a = p.parse_args()
    main(a.profile, a.seconds, a.threads, a.device)
