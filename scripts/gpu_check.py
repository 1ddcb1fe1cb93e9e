"""The GPU check: what a session with a CUDA GPU runs, in at most 10 minutes, and what it writes.

1. every chapter notebook in the smoke profile under nbval on CUDA (``WMLIB_DEVICE=cuda``), one
   pytest per notebook, with its wall time and, on a failure, the end of its output;
2. the benchmarks on CUDA (``python -m wmlib bench`` and ``benchmarks/bench_ch0*.py`` in the
   ``gpu`` profile), their printed figures kept;
3. two timed rounds of PlaNet's Algorithm 1 at the paper's size (the ``full`` profile: C = 100
   updates of 50 chunks of 50 frames, then one episode planned by CEM with 1000 candidates),
   after its 5 seed episodes; the first round includes torch.compile's warm-up.

Each part has a time budget and the whole check a deadline (``--minutes``, default 10): a part
that runs out is recorded as timed out, and the check goes on. Everything measured goes to one
JSON file: ``$OUT/gpu_check.json`` when ``$OUT`` is set (the device machine's output folder),
else ``results/gpu_check_<date>.json`` (``--out`` chooses another). The exit code is 1 when any
part failed.

Run (from the checkout, with the book installed):

    python scripts/gpu_check.py                 # on a CUDA machine
    python scripts/gpu_check.py --dry-run       # anywhere: the CPU, chapter 1, smoke sizes
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = {"notebooks": 330, "benchmarks": 150, "round": 90}  # of the 10 minutes


def run(cmd: list[str], timeout: float, env: dict | None = None) -> dict:
    """``cmd`` in the checkout, limited to ``timeout`` seconds: exit code, seconds, output."""
    start = time.time()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=max(timeout, 1))
        code, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        code = "timeout"
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
    return {"command": " ".join(cmd), "code": code, "seconds": round(time.time() - start, 1),
            "output": out}


class Deadline:
    """Seconds left to a part (its budget) and to the whole check."""

    def __init__(self, minutes: float):
        self.end = time.time() + 60 * minutes

    def part(self, budget: float) -> float:
        part_end = min(self.end, time.time() + budget)
        return lambda: part_end - time.time()


def notebooks(device: str, dry_run: bool, left) -> list[dict]:
    """Part 1: each chapter under nbval in the smoke profile on ``device``."""
    found = sorted((ROOT / "chapters").glob("*/*.ipynb"))
    env = {"WMLIB_DEVICE": device, "WMLIB_PROFILE": "smoke", "WMLIB_HEADLESS": "1"}
    rows = []
    for nb in found[:1] if dry_run else found:
        if left() <= 0:
            rows.append({"notebook": nb.name, "code": "not run: out of time"})
            continue
        r = run([sys.executable, "-m", "pytest", str(nb.relative_to(ROOT)), "--nbval-lax",
                 "--nbval-current-env", "-p", "no:cacheprovider", "-q"], left(), env)
        rows.append({"notebook": nb.name, "code": r["code"], "seconds": r["seconds"],
                     "output": r["output"][-3000:] if r["code"] != 0 else
                     r["output"].strip().splitlines()[-1:]})
    return rows


def benchmarks(device: str, dry_run: bool, left) -> list[dict]:
    """Part 2: the benchmarks on ``device``, in the gpu profile (smoke for a dry run)."""
    profile, repeats = ("smoke", "1") if dry_run else ("gpu", "2")
    per_profile = [["--device", device, "--profiles", profile, "--repeats", repeats]]
    commands = [["-m", "wmlib", "bench", "--device", device, "--profiles", profile]]
    commands += [[f"benchmarks/bench_ch0{n}.py", *per_profile[0]] for n in (3, 4, 5, 6)]
    commands += [["benchmarks/bench_ch02.py", "--seconds", "2", "--device", device]]
    rows = []
    for cmd in commands:
        if left() <= 0:
            rows.append({"command": " ".join(cmd), "code": "not run: out of time"})
            continue
        rows.append(run([sys.executable, *cmd], left()))
    return rows


def algorithm1_round(profile: str, device: str, rounds: int = 2) -> dict:
    """Part 3, in this process: PlaNet's seed episodes, then ``rounds`` rounds of Algorithm 1
    (no evaluation), timed."""
    import torch

    from wmlib.agents.planet import CONFIGS, PlaNetAgent

    cfg = dataclasses.replace(CONFIGS[profile], episodes=rounds, eval_every=0, budget_s=None)
    start = time.time()
    agent = PlaNetAgent(cfg, seed=0, device=device)
    agent.train(progress=False, echo=False)
    h = agent.history
    # the planned actions of each round's episode (its replay entry holds one more frame)
    actions = [len(ep["reward"]) - 1 for ep in agent.replay.episodes[-rounds:]]
    per_round = [{"round": i, "train_s": round(t, 2), "collect_s": round(c, 2),
                  "update_s": round(t / cfg.collect_interval, 4),
                  "plan_s_per_action": round(c / n, 4), "return": round(r, 1)}
                 for i, t, c, n, r in zip(h["train_s"][0], h["train_s"][1], h["collect_s"][1],
                                          actions, h["return"][1])]
    return {"profile": profile, "device": str(agent.device), "config": dataclasses.asdict(cfg),
            "rounds": per_round, "seconds": round(time.time() - start, 1),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "max_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if torch.cuda.is_available() else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="on the CPU: chapter 1 only, the benchmarks and the round in smoke")
    p.add_argument("--minutes", type=float, default=10.0, help="the whole check's deadline")
    p.add_argument("--out", default=None, help="the JSON file (default: $OUT/gpu_check.json, "
                   "else results/gpu_check_<date>.json)")
    p.add_argument("--round", default=None, help=argparse.SUPPRESS)  # part 3's subprocess
    p.add_argument("--device", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.round:  # part 3 in its own process, so that its time limit can stop it
        print(json.dumps(algorithm1_round(args.round, args.device)))
        return 0
    device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA GPU here; run with --dry-run to check the script on the CPU",
                  file=sys.stderr)
            return 2
    sys.path.insert(0, str(ROOT))
    from wmlib import results

    deadline = Deadline(args.minutes)
    began = time.time()
    report = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
              "hardware": results.hardware(), "commit": results.git_commit(),
              "device": device, "dry_run": args.dry_run}
    print("1/3 notebooks under nbval ...", flush=True)
    report["notebooks"] = notebooks(device, args.dry_run, deadline.part(BUDGET_S["notebooks"]))
    print("2/3 benchmarks ...", flush=True)
    report["benchmarks"] = benchmarks(device, args.dry_run,
                                      deadline.part(BUDGET_S["benchmarks"]))
    print("3/3 rounds of Algorithm 1 ...", flush=True)
    left = deadline.part(BUDGET_S["round"])
    r = run([sys.executable, __file__, "--round", "smoke" if args.dry_run else "full",
             "--device", device], left())
    report["algorithm1"] = (json.loads(r["output"].strip().splitlines()[-1]) if r["code"] == 0
                            else r | {"output": r["output"][-3000:]})
    report["seconds"] = round(time.time() - began, 1)
    failed = [row.get("notebook") or row.get("command") for row in
              report["notebooks"] + report["benchmarks"] if row["code"] != 0]
    if r["code"] != 0:
        failed.append("algorithm1")
    report["failed"] = failed
    out = Path(args.out) if args.out else (
        Path(os.environ["OUT"]) / "gpu_check.json" if os.environ.get("OUT") else
        ROOT / "results" / f"gpu_check_{datetime.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{len(failed)} failed {failed}; {report['seconds']:.0f} s; written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
