"""CMA-ES through `cma` (wmlib.evolution) on functions with known optima."""

from __future__ import annotations

import numpy as np
import pytest

from wmlib.evolution import cmaes, generation_seeds, shifted_sphere, simple_es

OPTIMUM = (np.arange(6) + 1) / 10


def test_cmaes_finds_the_optimum_of_a_shifted_sphere():
    res = cmaes(shifted_sphere, np.zeros(6), 0.3, popsize=12, generations=80, progress=False)
    np.testing.assert_allclose(res.best_params, OPTIMUM, atol=1e-2)
    np.testing.assert_allclose(res.mean_params, OPTIMUM, atol=1e-2)
    assert res.best_fitness > -1e-3
    assert res.evaluations == 80 * 12
    steps, best = res.history["best"]
    assert steps == list(range(80)) and best[-1] > best[0]
    _, mean = res.history["mean"]
    assert all(m <= b for m, b in zip(mean, best))


def test_cmaes_solves_rosenbrock_with_batch_fitness():
    """Rosenbrock in 4 dimensions: a curved valley, optimum 0 at (1, 1, 1, 1)."""
    def batch(x, seeds):
        return -np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1)

    res = cmaes(None, np.zeros(4), 0.5, popsize=16, generations=250, batch_fitness=batch,
                progress=False)
    np.testing.assert_allclose(res.best_params, np.ones(4), atol=0.05)


def test_weight_decay_moves_the_optimum_to_the_hand_computed_one():
    """The original's L2 penalty: maximising sum(x) - wd * mean(x^2) over n = 4 parameters has
    its optimum at x_i = n / (2 wd) = 2 for wd = 1 (the fitness alone has none); the history
    reports the fitness without the penalty."""
    res = cmaes(lambda x, s: float(np.sum(x)), np.zeros(4), 0.5, popsize=12, generations=120,
                progress=False, weight_decay=1.0)
    np.testing.assert_allclose(res.mean_params, np.full(4, 2.0), atol=0.05)
    _, best = res.history["best"]
    assert best[-1] == pytest.approx(8.0, abs=0.3)  # sum(x) at the optimum, no penalty


def test_rollouts_are_averaged_over_shared_seeds():
    seen = []

    def noisy(x, seed):
        seen.append(seed)
        return shifted_sphere(x) + seed % 2  # the noise is the same for every candidate

    res = cmaes(noisy, np.zeros(3), 0.3, popsize=4, generations=2, rollouts=2, seed=5,
                progress=False)
    assert seen == [s for _ in range(4) for s in generation_seeds(5, 0, 2)] + \
        [s for _ in range(4) for s in generation_seeds(5, 1, 2)]
    assert res.evaluations == 2 * 4 * 2
    assert len(set(generation_seeds(0, 0, 3) + generation_seeds(0, 1, 3))) == 6


def test_cmaes_over_worker_processes_matches_in_process():
    kw = dict(popsize=6, generations=3, seed=1, progress=False)
    a = cmaes(shifted_sphere, np.zeros(5), 0.3, workers=1, **kw)
    b = cmaes(shifted_sphere, np.zeros(5), 0.3, workers=2, **kw)
    np.testing.assert_allclose(a.history["best"][1], b.history["best"][1])
    np.testing.assert_allclose(a.mean_params, b.mean_params)


def test_cmaes_resumes_from_its_run_dir(tmp_path):
    first = cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=6, generations=3, seed=2,
                  run_dir=tmp_path, progress=False)
    assert first.generations == 3 and (tmp_path / "es.pkl").exists()
    more = cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=6, generations=5, seed=2,
                 run_dir=tmp_path, progress=False)
    straight = cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=6, generations=5, seed=2,
                     progress=False)
    assert more.generations == 5 and more.evaluations == 30
    np.testing.assert_allclose(more.history["best"][1], straight.history["best"][1])
    with pytest.raises(ValueError, match="population"):
        cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=8, generations=5, run_dir=tmp_path,
              progress=False)


def test_cmaes_rejects_bad_input():
    with pytest.raises(ValueError):
        cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=1, generations=3)
    with pytest.raises(ValueError):
        cmaes(shifted_sphere, np.zeros(4), -1.0, popsize=4, generations=3)
    with pytest.raises(ValueError, match="exactly one"):
        cmaes(None, np.zeros(4), 0.3, popsize=4, generations=3)
    with pytest.raises(ValueError, match="workers"):
        cmaes(shifted_sphere, np.zeros(4), 0.3, popsize=4, generations=3, workers=0)


def test_simple_es_from_scratch_finds_the_optimum():
    mean, best = simple_es(lambda x: -np.sum((x - OPTIMUM) ** 2, 1), np.zeros(6),
                           generations=60, rng=np.random.default_rng(0))
    np.testing.assert_allclose(mean, OPTIMUM, atol=0.02)
    assert best[-1] > best[0]
