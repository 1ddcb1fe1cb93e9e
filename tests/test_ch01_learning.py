"""Chapter 1's learning tests: planning with the true simulator must swing the pole up, and the
learned dynamics model must fit its data. Each fails if the algorithm breaks."""

from dataclasses import replace

import numpy as np

from wmlib.agents import mpc
from wmlib.rollout import random_policy, run_episode


def test_cem_with_true_simulator_beats_random_play(cartpole):
    cfg = replace(mpc.CONFIGS["smoke"], horizon=12, candidates=100, top_k=10, iterations=3)
    _, info = run_episode(cartpole, mpc.true_sim_policy(cartpole, "cem", cfg, seed=0), seed=0,
                          max_steps=40)
    random = [run_episode(cartpole, random_policy(cartpole), seed=s, max_steps=40)[1]["return"]
              for s in range(10)]
    # 40 decisions (320 control steps): random play earns about 20 (at most about 60 over
    # 10 seeds); CEM swings the pole up and earns well over 100.
    assert info["return"] > 100 and info["return"] > 1.5 * max(random), (info, random)


def test_learned_dynamics_model_fits_transitions(cartpole):
    agent = mpc.LearnedModelAgent(replace(mpc.CONFIGS["smoke"], hidden=64, batch_size=128), 5, 1)
    for s in range(3):
        agent.replay.add(run_episode(cartpole, random_policy(cartpole), seed=s)[0])
    losses = agent.train(300, progress=False)["state_loss"][1]
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
