"""Evolution strategies for controllers: CMA-ES through the ``cma`` package.

World Models (Ha & Schmidhuber 2018, the controller "C") trains its 867-parameter controller with
CMA-ES (Hansen 2016): sample a population x_i ~ m + sigma N(0, C), evaluate each candidate's
fitness (the return averaged over a few rollouts), and move the mean m, the step size sigma and
the covariance C towards the better candidates. The paper uses a population of 64, each
candidate averaged over 16 rollouts, evaluated in parallel over many CPU cores.

:func:`cmaes` maximises a fitness ``fitness(params, seed) -> float`` (a returned *return*, not a
loss) with

- ``popsize`` candidates per generation and ``rollouts`` seeds averaged per candidate; all
  candidates of a generation see the same seeds (common random numbers: the same tracks), so
  their ranking reflects the controller rather than the luck of the track;
- evaluation spread over ``workers`` processes (``multiprocessing``, spawn), each set up once
  by ``initializer(*initargs)`` (to load V and M a single time per process);
- or ``batch_fitness(params_matrix, seeds) -> (popsize,)`` to evaluate the whole population at
  once (the dream, vectorised on the device);
- a tqdm bar, a :class:`~wmlib.training.History` of best, mean and worst fitness and sigma per
  generation, and a checkpoint (``run_dir/es.pkl``) after every generation that a rerun resumes.

:func:`simple_es` is a from-scratch (mu, lambda)-ES with a Gaussian search distribution, for the
chapter's teaching cell.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wmlib.progress import tqdm
from wmlib.training import History

Fitness = Callable[[np.ndarray, int], float]


class Evaluator:
    """Evaluate ``fitness(params, seed)`` for many (params, seed) jobs, in-process or over a pool.

    With ``workers > 1`` a pool of spawned processes is started once and reused; each runs
    ``initializer(*initargs)`` first. ``fitness`` and ``initializer`` must then be importable
    module-level functions (or ``functools.partial`` of them), as multiprocessing pickles them.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, fitness: Fitness, workers: int = 1, initializer: Callable | None = None,
                 initargs: Sequence = ()):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.fitness, self.workers = fitness, workers
        self.pool = None
        if workers > 1:
            ctx = mp.get_context("spawn")
            self.pool = ctx.Pool(workers, initializer=initializer, initargs=tuple(initargs))
        elif initializer is not None:
            initializer(*initargs)

    def map(self, jobs: Sequence[tuple[np.ndarray, int]]) -> list[float]:
        if self.pool is None:
            return [float(self.fitness(p, s)) for p, s in jobs]
        return [float(f) for f in self.pool.starmap(self.fitness, jobs, chunksize=1)]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ESResult:
    """What :func:`cmaes` returns: the best candidate seen (by its averaged fitness during
    training), the final mean of the search distribution, and the history per generation."""

    best_params: np.ndarray
    best_fitness: float
    mean_params: np.ndarray
    history: History
    generations: int
    evaluations: int
    seconds: float
    extra: dict = field(default_factory=dict)


def generation_seeds(seed: int, generation: int, rollouts: int) -> list[int]:
    """The environment seeds every candidate of ``generation`` is evaluated on."""
    return [seed * 1_000_003 + generation * rollouts + j for j in range(rollouts)]


def cmaes(fitness: Fitness | None, x0: np.ndarray, sigma0: float, popsize: int,
          generations: int, *, rollouts: int = 1, workers: int = 1,
          initializer: Callable | None = None, initargs: Sequence = (),
          batch_fitness: Callable[[np.ndarray, list[int]], np.ndarray] | None = None,
          seed: int = 0, run_dir: str | Path | None = None, progress: bool = True,
          desc: str = "CMA-ES", diagonal: bool = False, cma_options: dict | None = None,
          log: Callable[[str], None] | None = None, weight_decay: float = 0.0) -> ESResult:
    """Maximise ``fitness(params, seed)`` averaged over ``rollouts`` seeds with CMA-ES.

    ``popsize`` candidates per generation for ``generations`` generations, starting from
    ``x0`` with step size ``sigma0``. With ``run_dir`` the search state is saved after every
    generation to ``run_dir/es.pkl`` and a rerun continues from it (``generations`` is the
    total). ``diagonal=True`` keeps a diagonal covariance (sep-CMA-ES, cheaper in high
    dimension). Ctrl-C stops after saving, returning what was found so far.

    ``weight_decay``: the L2 penalty of the original World Models code (``es.py``'s
    ``compute_weight_decay``, 0.01 there): CMA-ES ranks ``fitness - weight_decay * mean(x^2)``,
    which keeps the controller's weights small; the history and the best candidate report the
    fitness itself.
    """
    import cma

    x0 = np.asarray(x0, dtype=float)
    if x0.ndim != 1 or x0.size < 2:
        raise ValueError(f"x0 must be a flat vector of at least 2 parameters, got shape "
                         f"{x0.shape}")
    if popsize < 2 or generations < 0 or rollouts < 1 or sigma0 <= 0:
        raise ValueError(f"need popsize >= 2, generations >= 0, rollouts >= 1 and sigma0 > 0; "
                         f"got {popsize}, {generations}, {rollouts}, {sigma0}")
    if (fitness is None) == (batch_fitness is None):
        raise ValueError("pass exactly one of fitness(params, seed) and "
                         "batch_fitness(params_matrix, seeds)")
    ckpt = Path(run_dir) / "es.pkl" if run_dir else None
    state = None
    if ckpt is not None and ckpt.exists():
        state = pickle.loads(ckpt.read_bytes())
        if state["x0_size"] != x0.size or state["popsize"] != popsize:
            raise ValueError(f"{ckpt} holds a search over {state['x0_size']} parameters with "
                             f"population {state['popsize']}, not {x0.size} and {popsize}; use "
                             "another run directory")
    if state is None:
        opts = {"popsize": popsize, "seed": seed + 1, "verbose": -9, "CMA_diagonal": diagonal}
        opts.update(cma_options or {})
        state = {"es": cma.CMAEvolutionStrategy(x0, sigma0, opts), "history": {},
                 "generation": 0, "best_params": x0.copy(), "best_fitness": -np.inf,
                 "evaluations": 0, "seconds": 0.0, "x0_size": x0.size, "popsize": popsize}
    es, history = state["es"], History()
    history.load_state_dict(state["history"])
    evaluator = None  # started on the first generation to run (a finished search spawns none)
    bar = tqdm(total=generations, initial=min(state["generation"], generations), desc=desc,
               disable=not progress)
    start = time.time() - state["seconds"]
    try:
        while state["generation"] < generations:
            g = state["generation"]
            solutions = es.ask()
            seeds = generation_seeds(seed, g, rollouts)
            if batch_fitness is not None:
                fit = np.asarray(batch_fitness(np.asarray(solutions), seeds), dtype=float)
                if fit.shape != (len(solutions),):
                    raise ValueError(f"batch_fitness returned shape {fit.shape}, expected "
                                     f"({len(solutions)},)")
            else:
                if evaluator is None:
                    evaluator = Evaluator(fitness, workers, initializer, initargs)
                jobs = [(x, s) for x in solutions for s in seeds]
                fit = np.asarray(evaluator.map(jobs)).reshape(len(solutions), rollouts).mean(1)
            penalty = weight_decay * np.mean(np.square(solutions), axis=1)
            es.tell(solutions, (penalty - fit).tolist())  # cma minimises
            i = int(np.argmax(fit))
            if fit[i] > state["best_fitness"]:
                state["best_fitness"], state["best_params"] = float(fit[i]), np.array(solutions[i])
            history.log(g, best=fit.max(), mean=fit.mean(), worst=fit.min(), sigma=es.sigma,
                        best_ever=state["best_fitness"])
            state["generation"] = g + 1
            state["evaluations"] += len(solutions) * rollouts
            state["seconds"] = time.time() - start
            state["history"] = history.state_dict()
            if ckpt is not None:
                ckpt.parent.mkdir(parents=True, exist_ok=True)
                tmp = ckpt.with_suffix(".tmp")
                tmp.write_bytes(pickle.dumps(state))
                tmp.replace(ckpt)
            bar.update(1)
            bar.set_postfix(best=f"{fit.max():.1f}", mean=f"{fit.mean():.1f}",
                            sigma=f"{es.sigma:.3g}")
            if log is not None:
                log(f"{desc} generation {g}: best {fit.max():.1f}, mean {fit.mean():.1f}, "
                    f"worst {fit.min():.1f}, sigma {es.sigma:.4f}, {state['seconds']:.0f} s")
    except KeyboardInterrupt:
        print(f"Interrupted at generation {state['generation']}"
              + (f"; the search is saved in {ckpt}, run again to resume." if ckpt else "."))
    finally:
        bar.close()
        if evaluator is not None:
            evaluator.close()
    return ESResult(best_params=state["best_params"], best_fitness=state["best_fitness"],
                    mean_params=np.asarray(es.mean, dtype=float), history=history,
                    generations=state["generation"], evaluations=state["evaluations"],
                    seconds=state["seconds"])


def shifted_sphere(params: np.ndarray, seed: int = 0) -> float:
    """A fitness with a known optimum for tests and the chapter: -||x - x*||^2 with
    x*_i = (i + 1) / 10, maximal (0) at x*. ``seed`` is ignored."""
    x = np.asarray(params, float)
    return -float(np.sum((x - (np.arange(x.size) + 1) / 10) ** 2))


def simple_es(fitness_batch: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
              sigma: float = 0.5, popsize: int = 32, elite: int = 8, generations: int = 50,
              rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[float]]:
    """A (mu, lambda)-ES from scratch: sample x_i = m + sigma_d eps_i, keep the ``elite`` best,
    set m and the per-coordinate sigma_d to their mean and standard deviation (like CEM).

    ``fitness_batch(X)`` returns the fitness of each row of X (maximised). Returns the final
    mean and the best fitness per generation. CMA-ES adds a full covariance, evolution paths
    and step-size control on top of this.
    """
    rng = rng or np.random.default_rng(0)
    mean = np.asarray(x0, float).copy()
    std = np.full_like(mean, sigma)
    best = []
    for _ in range(generations):
        x = mean + std * rng.standard_normal((popsize, mean.size))
        fit = np.asarray(fitness_batch(x))
        top = x[np.argsort(-fit)[:elite]]
        mean, std = top.mean(0), top.std(0) + 1e-8
        best.append(float(fit.max()))
    return mean, best
