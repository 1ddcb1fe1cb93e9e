"""The book's results page: ``results/README.md``, made from every ``results/*.json``.

One section per chapter, one table row per record: its profile, its headline numbers, how many
episodes or seeds they rest on, and its provenance (device, hardware, commit, date, wall time).
The headline numbers are read from the record by the first summariser of :data:`FAMILIES` that
recognises its ``values`` (a final evaluation, a training run, a planner comparison, ...), else
by :func:`generic`. The notes that cite the papers' numbers follow each table, apart from the
notes that describe our runs. Nothing on the page is typed by hand::

    python -m wmlib.results_page            # write results/README.md
    python -m wmlib.results_page --check    # exit 1 when results/README.md is out of date
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from wmlib import results

COMMAND = "python -m wmlib.results_page"

CHAPTERS = {
    "ch01": "Chapter 1: planning with a model (MPC: random shooting, CEM)",
    "ch02": "Chapter 2: World Models (CarRacing; `ch02_doom_*` is the VizDoom dream)",
    "ch03": "Chapter 3: PlaNet",
    "ch04": "Chapter 4: Dreamer",
    "ch05": "Chapter 5: LatCo and ColloDreamer (planning by collocation)",
    "ch06": "Chapter 6: BIRD",
    "ch07": "Chapter 7: DreamerV3 and TD-MPC",
}
OTHER = "Other records"

COLUMNS = ("record", "profile", "headline numbers", "episodes / seeds", "device", "hardware",
           "commit", "date", "minutes")

LEGEND = ("*final*: the final policy over fresh episodes, beside *random* actions on the same "
          "seeds; *last eval* and *best eval*: the last and the best evaluation on a run's "
          "learning curve; ± is the standard deviation over episodes (over seeds for the "
          "planners); *minutes*: the record's wall time.")


# numbers ---------------------------------------------------------------------------------------

def ret(x: float) -> str:
    """A return, to one decimal as the chapters print them."""
    return f"{x:.1f}"


def sig(x: float, digits: int = 4) -> str:
    """``x`` rounded to ``digits`` significant digits, without trailing zeros, and without an
    exponent unless it is tiny or huge (integers as they are)."""
    if isinstance(x, int) or x == 0 or not math.isfinite(x):
        return str(x)
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -4 or magnitude >= 9:
        return f"{x:.{digits - 1}e}"
    decimals = digits - 1 - magnitude
    text = f"{round(x, decimals):.{max(decimals, 0)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def plus_minus(mean: float, std: float | None) -> str:
    """``mean ± std`` of recorded numbers (``mean`` alone when no std was recorded)."""
    return f"{ret(mean)} ± {ret(std)}" if is_number(std) else ret(mean)


def mean_std(xs: list[float]) -> str:
    """``mean ± std`` (the population standard deviation, as ``np.std``) of returns."""
    return f"{ret(statistics.fmean(xs))} ± {ret(statistics.pstdev(xs))}"


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# record families: each returns (headline numbers, episodes/seeds) or None when not its kind ----

Summary = tuple[str, str]


def seeds_of(entry: dict) -> str:
    """How many seeds the record's ``seed`` field names (an int, or a list of them)."""
    seed = entry.get("seed")
    return plural(len(seed), "seed") if isinstance(seed, list) else "1 seed"


def final_evaluation(entry: dict) -> Summary | None:
    """A final evaluation (``final_returns`` beside ``random_returns`` on the same seeds),
    alone (chapter 4's ``*_final``) or added to a training run (its curve's numbers follow)."""
    v = entry["values"]
    if not v.get("final_returns"):
        return None
    parts = [f"final {mean_std(v['final_returns'])}"]
    if v.get("random_returns"):
        parts.append(f"random {mean_std(v['random_returns'])}")
    curve = training_run(entry)
    if curve:
        parts.append(curve[0])
    elif "env_steps" in v:
        parts.append(f"{v['env_steps']} env steps")
    count = plural(len(v["final_returns"]), "episode")
    return "; ".join(parts), (f"{seeds_of(entry)}, {count}" if curve else count)


def training_run(entry: dict) -> Summary | None:
    """A training run's learning curve (PlaNet, Dreamer and its ablations, ColloDreamer, BIRD):
    its last and best evaluations and the environment steps it took."""
    v = entry["values"]
    if "eval_curve" not in v or "final_eval_return" not in v:
        return None
    parts = [f"last eval {ret(v['final_eval_return'])}" if is_number(v["final_eval_return"])
             else "no evaluation"]
    if is_number(v.get("best_eval_return")):
        parts.append(f"best eval {ret(v['best_eval_return'])}")
    if "env_steps" in v:
        parts.append(f"{v['env_steps']} env steps")
    return "; ".join(parts), seeds_of(entry)


def planner_comparison(entry: dict) -> Summary | None:
    """Planners on one world model (chapter 5): each planner's return over the seeds, and
    random actions on the same seeds."""
    v = entry["values"]
    rows = v.get("rows")
    if not (isinstance(rows, list) and rows and isinstance(rows[0], dict)
            and {"planner", "return"} <= rows[0].keys()):
        return None
    by: dict[str, list[float]] = {}
    for row in rows:
        by.setdefault(row["planner"], []).append(row["return"])
    parts = [f"{p} {mean_std(r)}" for p, r in by.items()]
    if v.get("random_returns"):
        parts.append(f"random actions {ret(statistics.fmean(v['random_returns']))}")
    seeds = len(v.get("seeds") or next(iter(by.values())))
    return "; ".join(parts), f"{plural(seeds, 'seed')} × {plural(len(by), 'planner')}"


def model_variants(entry: dict) -> Summary | None:
    """Chapter 3's model variants: each variant's open-loop squared pixel error, averaged over
    the predicted steps (and over the seeds when there are several)."""
    v = entry["values"]
    if isinstance(v.get("open_loop_mse_per_step"), dict):  # first edition: one seed
        errors = {k: statistics.fmean(e) for k, e in v["open_loop_mse_per_step"].items() if e}
    elif isinstance(v.get("variants"), dict):
        errors = {k: statistics.fmean(x for s in runs for x in s["open_loop_mse"])
                  for k, runs in v["variants"].items()
                  if runs and all(s.get("open_loop_mse") for s in runs)}
    else:
        return None
    if not errors:
        return None
    return ("open-loop MSE " + "; ".join(f"{k} {sig(e)}" for k, e in errors.items()),
            seeds_of(entry))


def temperature_table(entry: dict) -> Summary | None:
    """Chapter 2's VizDoom dream: per temperature, the controller's score in the dream and in
    the real game, and random actions."""
    v = entry["values"]
    table = v.get("table")
    if not (isinstance(table, list) and table and isinstance(table[0], dict)
            and "temperature" in table[0]):
        return None
    parts = [f"τ {row['temperature']}: dream {plus_minus(row['dream_mean'], row.get('dream_std'))}"
             f", real {plus_minus(row['real_mean'], row.get('real_std'))}" for row in table]
    if is_number(v.get("random_mean")):
        parts.append(f"random {plus_minus(v['random_mean'], v.get('random_std'))}")
    return "; ".join(parts), episodes_of(v)


def paired_means(entry: dict) -> Summary | None:
    """Several policies evaluated side by side (chapter 2): every ``<x>_mean`` with its
    ``<x>_std``."""
    v = entry["values"]
    keys = [k[:-5] for k in v if k.endswith("_mean") and is_number(v[k])]
    if not keys:
        return None
    parts = [f"{k} {plus_minus(v[k + '_mean'], v.get(k + '_std'))}" for k in keys]
    return "; ".join(parts), episodes_of(v)


def episodes(entry: dict) -> Summary | None:
    """Returns over evaluation episodes (chapter 1's planners): ``mean`` and ``std``."""
    v = entry["values"]
    if not is_number(v.get("mean")):
        return None
    return f"return {plus_minus(v['mean'], v.get('std'))}", episodes_of(v)


def episodes_of(values: dict) -> str:
    """The number of evaluation episodes: ``eval_episodes``, ``episodes``, or the length of
    ``returns``."""
    for key in ("eval_episodes", "episodes"):
        if is_number(values.get(key)):
            return plural(values[key], "episode")
    if isinstance(values.get("returns"), list):
        return plural(len(values["returns"]), "episode")
    return "n/a"


def generic(entry: dict) -> Summary:
    """Any other record: its first top-level numbers (at most 6, 4 significant digits)."""
    v = entry["values"]
    numbers = [f"{k} {sig(x)}" for k, x in v.items() if is_number(x)][:6]
    return "; ".join(numbers) or "(no numbers)", episodes_of(v)


FAMILIES: tuple[Callable[[dict], Summary | None], ...] = (
    final_evaluation, training_run, planner_comparison, model_variants, temperature_table,
    paired_means, episodes)


def summarise(entry: dict) -> Summary:
    """(headline numbers, episodes/seeds) of a record, by the first family that knows it."""
    for family in FAMILIES:
        found = family(entry)
        if found:
            return found
    return generic(entry)


# notes -----------------------------------------------------------------------------------------

CITED = re.compile(r"cited, not ours\.", re.IGNORECASE)


def split_notes(note: str | None) -> tuple[str, str]:
    """(the citation of published numbers, the rest) of a record's notes. The citation runs
    from "Published" (or the start) to "cited, not ours."; a note without that phrase only
    describes our run."""
    note = (note or "").strip()
    end = CITED.search(note)
    if not end:
        return "", note
    start = note.find("Published")
    start = start if 0 <= start < end.start() else 0
    cited = note[start:end.end()].strip()
    rest = (note[:start] + " " + note[end.end():]).strip()
    return cited, rest


def notes_section(entries: list[dict]) -> list[str]:
    """Each distinct citation once, then each distinct note about the runs with its records."""
    cited: list[str] = []
    about: dict[str, list[str]] = {}
    for e in entries:
        c, rest = split_notes(e.get("notes"))
        if c and c not in cited:
            cited.append(c)
        if rest:
            about.setdefault(rest, []).append(e["name"])
    lines = []
    if cited:
        lines += ["", "Published (cited, not measured here):", ""]
        lines += [f"- {c}" for c in cited]
    if about:
        lines += ["", "Notes recorded with the runs:", ""]
        lines += [f"- {', '.join(f'`{n}`' for n in names)}: {text}"
                  for text, names in about.items()]
    return lines


# the page --------------------------------------------------------------------------------------

def cell(text) -> str:
    """A table cell: pipes escaped, no line breaks."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def row(entry: dict) -> str:
    """One record's table row."""
    headline, count = summarise(entry)
    name = entry["name"]
    minutes = (f"{entry['wall_time_s'] / 60:.1f}" if is_number(entry.get("wall_time_s"))
               else "n/a")
    cells = (f"[{name}]({name}.json)", entry.get("profile", "n/a"), headline, count,
             entry.get("device") or "n/a", entry.get("hardware", "n/a"),
             entry.get("commit", "n/a"), str(entry.get("date", "n/a"))[:10], minutes)
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def chapter_of(name: str) -> str:
    prefix = name.split("_", 1)[0]
    return prefix if prefix in CHAPTERS else OTHER


def section(title: str, entries: list[dict]) -> list[str]:
    """A chapter's heading, its table and its notes."""
    lines = ["", f"## {title}", ""]
    if not entries:
        return lines + ["No recorded results yet."]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [row(e) for e in entries]
    return lines + notes_section(entries)


def render(results_dir: str | Path) -> str:
    """The Markdown page of every record in ``results_dir``, sorted by name."""
    entries = sorted(results.load("*", results_dir), key=lambda e: e["name"])
    groups: dict[str, list[dict]] = {key: [] for key in (*CHAPTERS, OTHER)}
    for e in entries:
        groups[chapter_of(e["name"])].append(e)
    lines = ["# Results", "",
             f"Generated by `{COMMAND}` from `results/*.json`; do not edit it by hand (run the "
             f"command again after recording a result; `{COMMAND} --check` tells whether it is "
             "up to date). Every number below is read from the record named in its row, whose "
             "`.log` sits beside it. " + LEGEND]
    for key, title in CHAPTERS.items():
        lines += section(title, groups[key])
    if groups[OTHER]:
        lines += section(OTHER, groups[OTHER])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``<results>/README.md``, or with ``--check`` exit 1 when it is out of date."""
    from wmlib.paths import results_dir, show

    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None,
                        help="the results folder (default: wmlib.paths.results_dir())")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when README.md differs from what would be written")
    args = parser.parse_args(argv)
    directory = args.results or results_dir()
    page, path = render(directory), directory / "README.md"
    if args.check:
        if path.is_file() and path.read_text() == page:
            return 0
        again = COMMAND + (f" --results {args.results}" if args.results else "")
        where = path if args.results else show(path)
        print(f"{where} is out of date with the records beside it: regenerate it with "
              f"`{again}`", file=sys.stderr)
        return 1
    path.write_text(page)
    print(f"wrote {show(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
