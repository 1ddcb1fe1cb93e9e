"""Chapter 5 throughput: the planning time per action of every planner of the book (random
shooting, CEM with PlaNet's budget and with LatCo's time, MPPI, LatCo cold and warm-started,
ColloDreamer warm-started) on a world model of each profile's size (chapter 4's state model,
random weights: the time does not depend on what the model learned; reacher's 6 state numbers
and 2 actions change it little), per device. The
comparison's settings per task are `wmlib.latent_mpc.TASKS`. Printed, never asserted.

Run: python benchmarks/bench_ch05.py [--profiles smoke quick gpu full] [--device cuda]
         [--threads N] [--repeats R]
"""

from __future__ import annotations

import dataclasses

import torch


def measure(profile: str, task: str, device: str, repeats: int) -> tuple[dict, object]:
    """Seconds per planned action of each planner, from one belief state, and the settings."""
    from wmlib.agents.collodreamer import STATE_CONFIGS, ColloDreamer, mean_features
    from wmlib.bench import time_per_call
    from wmlib.latent_mpc import TASKS, make_plan_fn
    from wmlib.planners.collocation import LatCoPlanner

    torch.manual_seed(0)
    cfg = STATE_CONFIGS[profile]
    model = ColloDreamer(cfg, 1, (5,)).to(device).eval()
    world = model.world
    comparison = TASKS[task].config
    if profile == "smoke":
        comparison = dataclasses.replace(comparison, horizon=4, candidates=20, top_k=4,
                                         iterations=2, random_candidates=None,
                                         equal_time_candidates=10, equal_time_top_k=2)
    state = world.dynamics.initial(1)
    dev = torch.device(device)
    times = {}
    for name in TASKS[task].planners:
        plan = make_plan_fn(name, world, world.predict_reward, model.value, comparison,
                            torch.Generator(device=dev).manual_seed(0))
        if name in ("latco", "collodreamer"):
            plan(state)  # the cold start; every later call is warm-started
        times[name] = time_per_call(lambda: plan(state), repeats, dev)  # noqa: B023
    cold = LatCoPlanner(dataclasses.replace(comparison.latco, warm_start=False), 1, dev)
    problem_z = mean_features(state)[0]
    from wmlib.agents.collodreamer import latent_problem

    problem = latent_problem(world)
    times["latco (cold start)"] = time_per_call(lambda: cold(problem, problem_z), 1, dev)
    return times, comparison


def main() -> None:
    from wmlib.bench import profile_benchmark_args
    from wmlib.latent_mpc import TASKS

    args, devices = profile_benchmark_args(__doc__)
    for device in devices:
        for profile in args.profiles:
            for task in TASKS:
                t, c = measure(profile, task, device, args.repeats)
                line = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in t.items())
                print(f"[{profile:5}] {device:4} {task:15} shooting H={c.horizon} J={c.candidates}"
                      f" I={c.iterations}, LatCo H={c.latco.horizon} ({c.latco.iterations} steps "
                      f"cold, {c.latco.warm_iterations} warm): {line}", flush=True)


if __name__ == "__main__":
    main()
