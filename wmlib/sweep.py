"""Sweeps: a grid of training runs (agent and variant, seed, profile, environment) as Ray tasks.

Each run of a sweep is the run ``python -m wmlib train`` makes, with its own run directory
(``runs/<prefix>/<label>_seed<S>_<profile>``: checkpoints, replay, log, TensorBoard events) and
its record (``results/<prefix>_<label>_seed<S>_<profile>.json``, with provenance). So a killed
sweep resumes where each run stopped, and a run whose record exists is skipped: the same sweep
called twice does the work once (delete a record to run it again).

Ray (``pip install -e ".[sweep]"``) schedules the runs: one CPU each by default, a fraction of
a GPU each with ``gpus_per_run``. On a laptop `run_sweep` starts a local Ray by itself; on a
cluster started with Ray's own ``ray start --head`` (and ``ray start --address=HEAD:6379`` on
the other machines) it joins with ``address``. Every machine then needs the book at the same
path, with ``runs/`` and ``results/`` on a shared filesystem for runs to resume on any machine;
the records also come back to the machine that launched the sweep.

`SWEEPS` holds the book's sweeps: chapter 4's ablation, chapter 5's ablation and chapter 6's
comparison (``python -m wmlib sweep ch04_ablation``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from wmlib import paths

AGENTS = ("planet", "dreamer", "collodreamer", "bird")
# The train option that chooses each agent's variant.
VARIANT_OPTION = {"planet": "--kind", "dreamer": "--ablation", "collodreamer": "--variant",
                  "bird": "--variant"}


def variants(agent: str) -> list[str]:
    """The variants ``python -m wmlib train AGENT`` offers (PlaNet's are its latent models)."""
    from wmlib.agents import bird, collodreamer, dreamer

    return {"planet": ["rnn", "ssm", "rssm"], "dreamer": list(dreamer.VARIANTS),
            "collodreamer": list(collodreamer.VARIANTS), "bird": list(bird.VARIANTS)}[agent]


class SweepError(ValueError):
    """A sweep that cannot start: an unknown agent or variant, a missing run, no Ray."""


@dataclass(frozen=True)
class Arm:
    """One agent and variant of a sweep, named ``label`` in its runs' names."""

    label: str
    agent: str
    variant: str | None = None      # None: the agent's default


@dataclass(frozen=True)
class Sweep:
    """A grid of runs: every arm with every seed, profile and environment.

    ``options`` are more ``train`` options for every run, with ``{episodes}`` and ``{profile}``
    filled in; ``init_from`` names the run under ``runs/`` each run starts from (chapter 5:
    chapter 4's world model), which must have finished first.
    """

    prefix: str                             # runs/<prefix>/..., results/<prefix>_...
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    profiles: tuple[str, ...] = ("quick",)
    envs: tuple[str | None, ...] = (None,)  # None: the configuration's environment
    episodes: int | None = None             # None: the profile's
    options: tuple[str, ...] = ()
    init_from: str | None = None


SWEEPS = {
    # Chapter 4's ablation: Dreamer from the state on cartpole-swingup, Gaussian or categorical
    # latents, KL balancing on or off, and categorical latents with DreamerV2's truncated-normal
    # actor (the fifth cell, from looking for why the categorical runs collapsed).
    "ch04_ablation": Sweep("ch04_ablation", tuple(
        Arm(v, "dreamer", v)
        for v in ("gaussian", "gaussian+balance", "categorical", "categorical+balance",
                  "categorical+trunc")),
        episodes=30, options=("--state",)),
    # Chapter 5's ablation: ColloDreamer continuing chapter 4's world model and replay for a
    # few episodes: the value bootstrap on or off, the value trained in the planner or after
    # execution, the augmented objective of eq. 11.
    "ch05_ablation": Sweep("ch05_ablation", tuple(
        Arm(v, "collodreamer", v) for v in ("default", "no-bootstrap", "execution", "augmented")),
        episodes=4, options=("--state", "--eval-every", "{episodes}", "--eval-episodes", "2"),
        init_from="dreamer_state_{profile}"),
    # Chapter 6's comparison: Dreamer, Dreamer with BIRD's FIFO replay, Soft-BIRD and BIRD,
    # each with a final 10-episode evaluation beside random actions.
    "ch06_compare": Sweep("ch06", (Arm("dreamer", "dreamer"), Arm("bird", "bird", "bird"),
                                   Arm("soft-bird", "bird", "soft-bird"),
                                   Arm("dreamer-fifo", "bird", "dreamer-fifo")),
                          episodes=60, options=("--state", "--final-episodes", "10")),
}


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its record's name, run directory and ``train`` arguments."""

    name: str
    run_dir: Path
    argv: tuple[str, ...]

    @property
    def out(self) -> Path:
        """The run's printed output (``train``'s stdout and stderr)."""
        return self.run_dir.parent / f"{self.name}.out"


def check(sweep: Sweep) -> None:
    """Refuse an unknown agent or variant, naming the known ones."""
    for arm in sweep.arms:
        if arm.agent not in AGENTS:
            raise SweepError(f"Unknown agent {arm.agent!r}; choose one of {list(AGENTS)}.")
        known = variants(arm.agent)
        if arm.variant is not None and arm.variant not in known:
            raise SweepError(f"Unknown variant {arm.variant!r} of {arm.agent}; choose one of "
                             f"{known}.")


def plan(sweep: Sweep, threads: int = 1, device: str | None = None) -> list[RunSpec]:
    """The runs of ``sweep``, in order (seed, then arm, as the chapters' tables read them)."""
    check(sweep)
    specs = []
    for profile in sweep.profiles:
        for env in sweep.envs:
            for seed in sweep.seeds:
                for arm in sweep.arms:
                    tag = f"{arm.label}_seed{seed}_{profile}"
                    if env is not None:
                        tag += "_" + re.sub(r"[^A-Za-z0-9.+-]", "-", env.split(":")[-1])
                    run_dir = paths.runs_dir(sweep.prefix) / tag
                    argv = ["train", arm.agent, "--seed", str(seed), "--profile", profile,
                            "--run-dir", str(run_dir), "--record", f"{sweep.prefix}_{tag}",
                            "--threads", str(threads), "--no-progress"]
                    if arm.variant is not None:
                        argv += [VARIANT_OPTION[arm.agent], arm.variant]
                    if sweep.episodes is not None:
                        argv += ["--episodes", str(sweep.episodes)]
                    if env is not None:
                        argv += ["--env", env]
                    if sweep.init_from is not None:
                        argv += ["--init-from",
                                 str(paths.runs_dir(sweep.init_from.format(profile=profile)))]
                    if device is not None:
                        argv += ["--device", device]
                    argv += [o.format(episodes=sweep.episodes, profile=profile)
                             for o in sweep.options]
                    specs.append(RunSpec(f"{sweep.prefix}_{tag}", run_dir, tuple(argv)))
    return specs


def recorded(spec: RunSpec) -> bool:
    """Whether the run has finished: its record is in ``results/``."""
    return (paths.results_dir() / f"{spec.name}.json").exists()


def train_run(spec: RunSpec, env: dict[str, str]) -> dict:
    """A Ray task: ``python -m wmlib train`` with ``spec.argv`` in this process, its output
    appended to ``spec.out``; returns the exit code and the record and log it wrote."""
    from wmlib import cli

    os.environ.update(env)
    spec.out.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.out, "a") as out, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(out):
        code = cli.main(list(spec.argv))
    base = paths.results_dir() / spec.name
    done = code == 0 and base.with_suffix(".json").exists()
    return {"code": code, "record": base.with_suffix(".json").read_text() if done else None,
            "log": base.with_suffix(".log").read_text() if done else None}


def reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse a cluster address nothing answers at (Ray itself waits for minutes)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as e:
        raise SweepError(
            f"No Ray cluster answers at {address} ({e}). Start one with `ray start --head` "
            "on the head machine and pass the address it prints (host:6379), or leave out "
            "--address to run on this machine.") from e


def start_ray(address: str | None, num_cpus: int | None, env: dict[str, str]):
    """Join the cluster at ``address``, or start a local Ray (``num_cpus``: default all)."""
    try:
        import ray
    except ImportError as e:
        raise SweepError('Sweeps run on Ray: pip install -e ".[sweep]" (or pip install '
                         '"ray>=2.9").') from e
    if address is not None:
        reachable(address)
    kw = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
    # The workers import this wmlib and get the book's settings (MUJOCO_GL, WMLIB_*).
    root = str(Path(__file__).resolve().parent.parent)
    pythonpath = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    ray.init(log_to_driver=False, runtime_env={"env_vars": env | {"PYTHONPATH": pythonpath}},
             **kw)
    return ray


def progress_of(spec: RunSpec) -> tuple[int, int] | None:
    """(episodes done, episodes) from the last ``episode k/N`` line of the run's log."""
    log = spec.run_dir / "log.txt"
    if not log.exists():
        return None
    found = re.findall(r"^episode (\d+)/(\d+):", log.read_text(), re.M)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def run_sweep(specs: list[RunSpec], *, cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
              address: str | None = None, num_cpus: int | None = None,
              progress: bool = True) -> dict[str, str]:
    """Run every spec not yet recorded as a Ray task; returns name -> ``"recorded"`` (done
    before), ``"done"`` or ``"failed"`` (see the run's ``.out`` file). A progress table shows
    each run's episodes while they train. No run to do: Ray is not started."""
    status = {s.name: "recorded" for s in specs if recorded(s)}
    todo = [s for s in specs if s.name not in status]
    for s in todo:
        if "--init-from" in s.argv:
            source = Path(s.argv[s.argv.index("--init-from") + 1])
            if not (source / "checkpoint.pt").exists():
                raise SweepError(f"{s.name} starts from the run in {paths.show(source)}, which "
                                 f"has no checkpoint: train it first, e.g. python -m wmlib "
                                 f"train dreamer --state --profile "
                                 f"{s.argv[s.argv.index('--profile') + 1]} --run-dir {source}")
    if not todo:
        return status
    env = {k: v for k, v in os.environ.items() if k.startswith("WMLIB_") or k == "MUJOCO_GL"}
    env |= {"WMLIB_HOME": str(paths.home().resolve()),
            "WMLIB_RESULTS": str(paths.results_dir().resolve())}
    ray = start_ray(address, num_cpus, env)
    try:
        task = ray.remote(train_run).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                             max_retries=0)
        pending = {task.remote(s, env): s for s in todo}
        bars = {s.name: tqdm(total=1, desc=s.name, position=i, leave=True, unit="episode",
                             disable=not progress, file=sys.stdout)
                for i, s in enumerate(todo)}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                s = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:
                    out = {"code": 1, "record": None, "log": None}
                    with open(s.out, "a") as f:
                        f.write(f"\n{e}\n")
                status[s.name] = "done" if out["record"] else "failed"
                if out["record"]:
                    keep(s.name, out["record"], out["log"])
                bars[s.name].set_postfix_str(status[s.name])
                bars[s.name].n = bars[s.name].total
            for s in pending.values():
                seen = progress_of(s)
                if seen:
                    bars[s.name].total, bars[s.name].n = seen[1], seen[0]
            for bar in bars.values():
                bar.refresh()
            time.sleep(0.2)
        for bar in bars.values():
            bar.close()
    finally:
        ray.shutdown()
    return status


def keep(name: str, record: str, log: str) -> None:
    """The record a task wrote, in this machine's ``results/`` (another machine of a cluster
    without a shared filesystem wrote it in its own)."""
    path = paths.results_dir() / f"{name}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(record)
        path.with_suffix(".log").write_text(log)


def from_args(definition: str | None, agent: str | None, variant_names: list[str] | None,
              prefix: str | None, state: bool = False, **grid) -> Sweep:
    """The sweep the command line asks for: a definition of `SWEEPS` (its grid overridden by
    the ``grid`` values given) or a grid of one agent's variants (from the state with
    ``state``)."""
    grid = {k: tuple(v) if isinstance(v, list) else v for k, v in grid.items() if v is not None}
    if definition is not None:
        if definition not in SWEEPS:
            raise SweepError(f"Unknown sweep {definition!r}; choose one of {list(SWEEPS)}, or "
                             "give --agent and --variants.")
        if agent or variant_names or state:
            raise SweepError("A sweep definition gives its agents, variants and observations; "
                             "leave out --agent, --variants and --state, or the definition.")
        return dataclasses.replace(SWEEPS[definition], **grid)
    if agent is None:
        raise SweepError(f"Name a sweep ({', '.join(SWEEPS)}) or an --agent to sweep.")
    arms = tuple(Arm(v, agent, v) for v in variant_names) if variant_names else \
        (Arm(agent, agent),)
    sweep = Sweep(prefix or f"sweep_{agent}", arms, options=("--state",) if state else (),
                  **grid)
    check(sweep)
    return sweep


def table(specs: list[RunSpec], status: dict[str, str]) -> str:
    """The sweep's runs and what became of them, one line each."""
    return "\n".join(f"{status.get(s.name, '?'):9} {s.name}" + (
        f"  (see {paths.show(s.out)})" if status.get(s.name) == "failed" else "")
        for s in specs)


__all__ = ["AGENTS", "Arm", "RunSpec", "SWEEPS", "Sweep", "SweepError", "check", "from_args",
           "plan", "recorded", "run_sweep", "table", "train_run", "variants"]

