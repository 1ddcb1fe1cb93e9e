"""Issue 27's probe of Dreamer's collapse to a constant push: per training round, the actor's
standard deviation (before any squashing), the size of its mode |tanh(mean)| and the share of
sampled actions with |a| > 0.99, on posterior states of replay batches.

    python scripts/probe_dreamer_actor.py NAME EPISODES '{"action_repeat": 2}' [SEED]

The JSON holds overrides of the quick state configuration (``"latents": "categorical"`` takes
DreamerV2's latents, `dreamer.variant`); the run goes to ``runs/probe_<NAME>_s<SEED>``.
"""

import json
import sys
import time

import torch

from wmlib import loop
from wmlib.agents import dreamer
from wmlib.agents.dreamer import DreamerAgent
from wmlib.models.actor_critic import action_std


class Probe(DreamerAgent):
    def update(self):
        m = super().update()
        with torch.no_grad():
            _, _, post = self.dreamer.world_loss(self.replay.sample(8, 16))
            f = post.features().reshape(-1, post.features().shape[-1])
            actor = self.dreamer.actor
            m["act_sat"] = float((actor(f).sample().abs() > 0.99).float().mean())
            m["act_mode"] = float(actor.mode(f).abs().mean())
            m["act_std"] = float(action_std(actor(f)).mean())
        return m


def main() -> None:
    name, episodes, over = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    latents = over.pop("latents", "gaussian")
    table = {k: dreamer.variant(v, latents, False) if latents == "categorical" else v
             for k, v in dreamer.configs(True).items()}
    start = time.time()
    agent = loop.train_agent(Probe, table, "quick", f"runs/probe_{name}_s{seed}", seed, None,
                              episodes, False, None, **over)
    h = agent.history
    steps, returns = h["return"]
    cols = {k: dict(zip(*h[k])) for k in ("act_sat", "act_mode", "act_std", "eval_return")
            if k in h}
    for s, r in zip(steps, returns):
        print(name, s, round(r, 1),
              " ".join(f"{k} {cols[k][s]:.3f}" for k in cols if s in cols[k]), flush=True)
    print(name, "wall", round(time.time() - start))


if __name__ == "__main__":
    main()
