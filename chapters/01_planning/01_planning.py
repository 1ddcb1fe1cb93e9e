# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 1 · Model-based RL and planning: MPC, random shooting and CEM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/world-models-book/world-models-book/blob/main/chapters/01_planning/01_planning.ipynb)
#
# A model of the world, $M(s, a) = (s', r)$, lets an agent *try before it acts*: it imagines
# what a sequence of actions would do, picks the best sequence, and only then moves. This
# chapter builds that idea with the simplest possible model, the simulator itself, and then
# with a small learned one, and shows why the loop around the planner, **model-predictive
# control (MPC)**, matters as much as the planner.
#
# ## Summary
#
# What you will learn, build and measure:
# 1. the MPC loop: plan, take the first action, replan;
# 2. two planners, **random shooting** and the **cross-entropy method (CEM)**, as PlaNet uses it;
# 3. "CEM + true simulator" on DeepMind Control's cartpole-swingup, the upper-bound row of
#    PlaNet's Table 1 (850 in the paper), beside the random policy on the same episodes;
# 4. a learned MLP dynamics model, how its error compounds with the horizon, and the loop that
#    learns a model, plans with it, collects data and retrains.
#
# Each algorithm comes in the same order: its key equations, its pseudocode, then the code that
# runs.
#
# ## Prerequisites
#
# - Python and NumPy.
# - PyTorch basics: tensors, an `nn.Module`, a loss, `backward()` and an optimiser step.
# - Markov decision processes: states, actions, rewards, episodes and the return (the sum of
#   the rewards of an episode), for example chapter 3 of Sutton and Barto's *Reinforcement
#   Learning: An Introduction* (2nd edition, 2018).
#
# No model-based RL is assumed, and no GPU is needed: the smoke profile runs in about a minute
# on a laptop.
#
# Sources: J. Vitay's *Deep Reinforcement Learning* lecture, chapter "Planning with learned world
# models" (TU Chemnitz); the PlaNet paper (Hafner et al. 2019, arXiv:1811.04551), its CEM planner
# (Algorithm 2) and its results table (Table 1).

# %%
# Colab set-up: installs wmlib and turns on headless (EGL) rendering. Does nothing elsewhere.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import wmlib
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "wmlib @ git+https://github.com/world-models-book/world-models-book"],
                       check=True)

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import wmlib
from wmlib import devices, envs, paths, results, viz
from wmlib.agents import mpc
from wmlib.planners import cem_plan, random_shooting
from wmlib.profiles import seed_everything
from wmlib.rollout import random_policy, run_episode
from wmlib.truesim import TrueSimulator

ctx = wmlib.setup(seed=0)
cfg = wmlib.pick(mpc.CONFIGS, ctx.profile)
print(cfg)
chapter_start = time.time()

# %% [markdown]
# ## 1. The task: cartpole-swingup
#
# A pole hangs below a cart; the agent pushes the cart left or right ($a \in [-1, 1]$) and is
# rewarded, at every one of the 1000 control steps (0.01 s each), for a pole that is up, a cart
# that is centred, small pushes and a slow pole: at most 1 per step, so at most 1000 per episode.
# As in PlaNet each action is repeated 8 times, so the agent decides 125 times per episode and
# collects at most 8 per decision. The agent here sees the true state (cart position, pole angle
# as cos and sin, velocities); chapter 3 learns from the pixels below.

# %%
env = envs.make(cfg.env_id, pixels=False)
pixel_env = envs.make(cfg.env_id, pixels=True)
episode, info = run_episode(pixel_env, random_policy(pixel_env), seed=0, max_steps=cfg.max_steps)
print(f"observation: {episode['obs'].shape[1:]} uint8 pixels; action space {env.action_space}")
shown = np.arange(0, len(episode["obs"]), max(1, len(episode["obs"]) // 8))[:8]
viz.frame_grid(episode["obs"][shown], ncols=8, titles=[f"t = {t}" for t in shown])
plt.show()

# %% [markdown]
# *Figure 1.1: eight frames of one episode of random actions (seed 0), 64x64 pixels; $t$ counts
# decisions of 8 control steps. Random pushes rarely bring the pole up.*
#
# A helper used throughout the chapter: `mpc.evaluate`, the returns of a policy over a few
# episodes with the seeds `seed, seed + 1, ...` (here without progress bars, so that the saved
# notebook holds only text). The random policy, on 10 episodes, is the baseline every planner
# must beat.

# %%
def evaluate(env, act, episodes, seed=0, max_steps=None, name=None):
    """`mpc.evaluate` without progress bars; with a ``name``, one printed line per episode."""
    return mpc.evaluate(env, act, episodes, seed, max_steps, desc=name or "eval",
                        log=print if name else None, progress=False)


random_returns = evaluate(env, random_policy(env), 10, seed=0, max_steps=cfg.max_steps)
print(f"random policy, 10 episodes (seeds 0-9): {np.mean(random_returns):.1f} "
      f"+- {np.std(random_returns):.1f}")

# %% [markdown]
# ## 2. Model-predictive control
#
# Given a model, the planner searches for the action sequence with the highest predicted return
# over a horizon $H$:
#
# $$a^*_{t:t+H} = \arg\max_{a_{t:t+H}} \; \sum_{\tau=t}^{t+H} r(s_\tau, a_\tau),
# \qquad s_{\tau+1} = M(s_\tau, a_\tau).$$
#
# MPC (Vitay's lecture) executes only the first action $a^*_t$, observes the real $s_{t+1}$, and
# plans again: the horizon recedes with every step. Replanning is meant to keep errors from
# accumulating: a wrong prediction ten steps ahead costs nothing if we replan before we get
# there; and every decision is taken with the full horizon ahead of it. Section 7 measures how
# much each of the two matters.
#
# ```text
# MPC (receding horizon)
# input: model M, planner, horizon H
# observe s_0
# for t = 0, 1, 2, ... until the episode ends:
#     a*_{t:t+H} = planner(M, s_t, H)         # maximise the predicted return over H steps
#     execute a*_t only; observe r_{t+1} and the real s_{t+1}
#     discard a*_{t+1:t+H}                     # the next step plans again from s_{t+1}
# ```
#
# In code, MPC is just a policy that plans on every call (`obs -> a_t`); `run_episode` rolls
# any policy out:

# %%
viz.show_source(run_episode)

# %% [markdown]
# ## 3. Two planners
#
# **Random shooting** (Vitay's lecture, "Random-sampling shooting"): sample $J$ action sequences
# uniformly, evaluate each with the model, keep the first action of the best one:
#
# $$a^{(j)}_{t:t+H} \sim \mathcal U([-1, 1]^{H \times d}), \qquad
# R^{(j)} = \sum_{\tau=t}^{t+H} r(s^{(j)}_\tau, a^{(j)}_\tau), \qquad
# a_t = a^{(j^*)}_t, \; j^* = \arg\max_j R^{(j)},$$
#
# where $s^{(j)}_\tau$ is the state the model predicts under $a^{(j)}$ from the real $s_t$ and
# $d$ is the dimension of an action.
#
# ```text
# Random shooting
# input: model M, state s_t, horizon H, number of candidates J
# for j = 1..J:
#     a^(j)_{t:t+H} ~ Uniform([-1, 1])            # every step and action dimension
#     R^(j) = sum of the rewards M predicts along a^(j) from s_t
# j* = argmax_j R^(j)
# return a^(j*)_t                                  # the first action of the best sequence
# ```

# %%
viz.show_source(random_shooting)

# %% [markdown]
# **The cross-entropy method** (PlaNet's Algorithm 2, Hafner et al. 2019, Appendix B) refines a
# belief over action sequences, $q(a_{t:t+H}) = \mathcal N(\mu_{t:t+H}, \sigma^2_{t:t+H} I)$,
# starting from $\mu = 0, \sigma = 1$. Each iteration samples $J$ candidates, evaluates their
# returns $R^{(j)}$, selects the top $K$,
# $\mathcal K = \mathrm{argsort}(\{R^{(j)}\})_{1:K}$, and refits
# $\mu = \frac1K \sum_{k\in\mathcal K} a^{(k)}$ and $\sigma$ to their spread. After $I$
# iterations it returns $\mu_t$. PlaNet uses $H=12, J=1000, K=100, I=10$.
#
# ```text
# CEM (PlaNet, Algorithm 2)
# input: model M, state s_t, horizon H, iterations I, candidates J, elites K
# q(a_{t:t+H}) = N(0, I)                          # zero mean, unit variance, per step and dim
# for i = 1..I:
#     for j = 1..J:
#         a^(j) ~ q(a_{t:t+H}), clipped to [-1, 1]
#         R^(j) = sum of the rewards M predicts along a^(j) from s_t
#     K_set = argsort({R^(j)})_{1:K}              # the K best candidates, the elites
#     mu    = 1/K sum_{k in K_set} a^(k)
#     sigma = sqrt(1/K sum_{k in K_set} (a^(k) - mu)^2)
#     q(a_{t:t+H}) = N(mu, sigma^2 I)
# return mu_t                                      # the mean of the first action
# ```
#
# PlaNet's Algorithm 2 writes $\sigma$ as a mean absolute deviation,
# $\frac1{K-1} \sum_{k} \lvert a^{(k)} - \mu \rvert$; the code below, like PlaNet's code, uses
# the standard deviation.

# %%
viz.show_source(cem_plan)

# %% [markdown]
# ### CEM on a function whose optimum we know
#
# Before trusting CEM with a robot, we check it where the answer is known: the "return"
# $R(a) = -\lVert a - a^\star\rVert^2$ of a 3-step, 2-dimensional action sequence is largest at
# $a^\star$. The printed first action must be $a^\star_0 = (0.5, -0.3)$.

# %%
# NBVAL_CHECK_OUTPUT
target = torch.tensor([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]])
gen = devices.generator("cpu", 0)  # a CPU toy: the target lives on the CPU
trace = []
first = cem_plan(lambda a: -((a - target) ** 2).sum((1, 2)), horizon=3, action_dim=2,
                 candidates=500, top_k=50, iterations=8, generator=gen, trace=trace)
print("CEM first action:", [round(x, 2) for x in first.tolist()])
print("std of the belief per iteration:", [round(t["std"].mean().item(), 3) for t in trace])

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
colors = plt.cm.viridis(np.linspace(0, 1, len(trace)))
for i, t in enumerate(trace):
    ax[0].hist(t["returns"].numpy(), bins=40, range=(-8, 0), histtype="step", lw=1.2,
               color=colors[i], label=f"iteration {i + 1}")
ax[0].set_xlabel("return of a candidate $R^{(j)} = -\\|a^{(j)} - a^\\star\\|^2$")
ax[0].set_ylabel("number of candidates (of 500)")
ax[0].legend(fontsize=7, ncol=2, loc="upper left")
iterations = np.arange(1, len(trace) + 1)
ax[1].semilogy(iterations, [t["std"].mean().item() for t in trace], "o-")
ax[1].set_xticks(iterations)
ax[1].set_xlabel("CEM iteration $i$")
ax[1].set_ylabel("mean $\\sigma$ after the refit\n(action units, actions in [-1, 1])")
fig.suptitle("CEM narrows its belief onto the optimum")
plt.show()

# %% [markdown]
# *Figure 1.2: CEM on $R(a) = -\lVert a - a^\star\rVert^2$ ($J = 500$, $K = 50$, $I = 8$).
# Left: the returns of the 500 candidates drawn in each iteration (returns below $-8$ are off
# the axis); they pile up at the optimum, 0. Right: the mean standard deviation of the belief
# after each iteration's refit, on a log scale: it halves at every iteration.*

# %% [markdown]
# ## 4. The true simulator as the model
#
# The best model is the simulator itself. To plan with it we save the MuJoCo state of the
# running episode and simulate every candidate from that state. `mujoco.rollout` runs all $J$
# candidates in C++ on every core; the reward of each visited state is then computed with
# dm_control's own `rewards.tolerance`. A check against the environment: the predicted return of
# a random action sequence must equal what the environment pays when we execute it.

# %%
sim = TrueSimulator(env)
obs, _ = env.reset(seed=1)
actions = torch.rand(1, 10, 1) * 2 - 1
predicted = sim.returns(actions).item()
paid = sum(env.step(a.numpy())[1] for a in actions[0])
print(f"simulated return {predicted:.6f}, environment paid {paid:.6f}")

# %% [markdown]
# One planning step from the first state of an episode, traced: each iteration draws its
# candidates from the current belief (at first $\mathcal N(0, 1)$), and the refit to the elites
# narrows the belief over the whole action sequence while the candidates' returns climb.

# %%
obs, _ = env.reset(seed=0)
trace = []
cem_plan(sim.returns, cfg.horizon, 1, cfg.candidates, cfg.top_k, cfg.iterations,
         generator=devices.generator("cpu", 0), trace=trace)  # the simulator: CPU
fig, ax = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
steps = np.arange(cfg.horizon)
colors = plt.cm.viridis(np.linspace(0, 1, len(trace)))
ax[0].plot(steps, np.zeros(cfg.horizon), "--", color="grey", label="initial belief $N(0, 1)$")
ax[0].fill_between(steps, -1, 1, color="grey", alpha=0.08)
for i, t in enumerate(trace):
    m, s = t["mean"][:, 0].numpy(), t["std"][:, 0].numpy()
    ax[0].plot(steps, m, color=colors[i], label=f"after iteration {i + 1}")
    ax[0].fill_between(steps, m - s, m + s, alpha=0.12, color=colors[i])
ax[0].set_xticks(steps)
ax[0].set_xlabel("planning step $\\tau - t$ (decisions ahead)")
ax[0].set_ylabel("action: belief $\\mu \\pm \\sigma$")
ax[0].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
ax[1].boxplot([t["returns"].numpy() for t in trace])
ax[1].set_xlabel("CEM iteration $i$ (its $J$ candidates)")
ax[1].set_ylabel(f"predicted return over\n$H = {cfg.horizon}$ decisions")
fig.suptitle(f"one CEM planning step with the true simulator: J={cfg.candidates}, "
             f"K={cfg.top_k}, I={cfg.iterations}", fontsize=10)
plt.show()

# %% [markdown]
# *Figure 1.3: one CEM planning step with the true simulator from the first state of the
# episode with seed 0, with this profile's $J$, $K$ and $I$ (in the title). Left: the belief
# over the action sequence, $\mu \pm \sigma$ (bands), before the first iteration (grey) and
# after each iteration's refit. Right: the predicted returns of the $J$ candidates drawn in
# each iteration (boxes: quartiles; whiskers: 1.5 times the interquartile range; circles:
# candidates beyond); the belief after iteration $i$ is the one iteration $i + 1$ draws from.*
#
# ### MPC with CEM and the true simulator: one episode
#
# The planner simulates from the state of `env`, so it must act in that same `env`. Frames are
# rendered at 128x128 for the video only.

# %%
act = mpc.true_sim_policy(env, "cem", cfg, seed=0)
episode, info = run_episode(env, act, seed=0, render_size=128, max_steps=cfg.max_steps)
print(f"return {info['return']:.1f} in {info['steps']} decisions, {info['seconds']:.0f} s")
viz.show_video(info["frames"], fps=12)

# %%
plt.figure(figsize=(6, 2.8), layout="constrained")
plt.plot(np.arange(1, len(episode["reward"])), np.cumsum(episode["reward"][1:]))
plt.xlabel("decision $t$ (8 control steps, 0.08 s each)")
plt.ylabel("cumulative reward")
plt.title("swing up, then balance")
plt.show()

# %% [markdown]
# *Figure 1.4: the cumulative reward of the episode in the video (seed 0), CEM with the true
# simulator. It climbs slowly while the pole swings up, then steeply while the pole balances
# (a decision pays at most 8).*

# %% [markdown]
# ## 5. CEM and random shooting, evaluated
#
# Both planners on the same episodes (seeds 0, 1, ...), with this profile's settings
# (`mpc.evaluate_true_sim`), their returns written to `results/` with their profile, hardware,
# seed, commit and wall time. A headline number is the mean of 10 episodes; at quick's
# settings that is about 27 minutes per planner on 2 CPU cores, so they run from a terminal,
# `python -m wmlib mpc --planner cem --profile quick --episodes 10` (and `--planner shooting`),
# and this cell reads them from `results/` when they are there; otherwise it evaluates this
# profile's `eval_episodes` (2 in quick) here.

# %%
summary = {}
for planner in ("cem", "shooting"):
    prior = results.load(f"ch01_{planner}_truesim_{ctx.profile}")
    if prior and prior[0]["values"]["episodes"] >= 10:
        summary[planner] = prior[0]["values"]
        print(f"{planner}: {summary[planner]['episodes']} episodes read from results/ "
              f"(commit {prior[0]['commit']}): {summary[planner]['mean']} +- "
              f"{summary[planner]['std']}")
    else:
        summary[planner] = mpc.evaluate_true_sim(planner, ctx.profile, seed=0, progress=False)

# %% [markdown]
# The table below is read from `results/` with `wmlib.results.load`, never typed: every
# recorded evaluation of this chapter, whichever profile wrote it, beside the random policy run
# here on exactly the same seeds (full episodes). Each row says how many episodes it averages:
# the quick rows committed with the book have 10 (mean $\pm$ standard deviation of the 10
# returns); the `full` row, PlaNet's own planner settings, has 2 (several minutes per episode
# here), so its $\pm$ is the spread of two returns, not a headline.

# %%
recorded = results.load("ch01_*_truesim_*")
if ctx.profile == "smoke":
    print("(smoke profile: the evaluation above is not recorded; the table shows recorded runs)")
if not recorded:
    print(f"nothing recorded in {paths.show(paths.results_dir())} yet: run this chapter in the "
          "quick profile, or `python -m wmlib mpc`")
random_on = {}
print(f"{'planner (true simulator)':25} {'profile':>7} {'seeds':>5} {'return':>15} "
      f"{'random, same seeds':>18} {'s/episode':>9}")
for e in recorded:
    v = e["values"]
    seeds = range(e["seed"], e["seed"] + v["episodes"])
    if (v["env"], seeds) not in random_on:
        random_env = envs.make(v["env"], pixels=False)
        random_on[v["env"], seeds] = evaluate(random_env, random_policy(random_env),
                                              v["episodes"], seed=e["seed"])
    rnd = random_on[v["env"], seeds]
    knobs = (f"CEM J={v['candidates']} K={v['top_k']} I={v['iterations']}"
             if v["planner"] == "cem" else f"shooting J={v['candidates']}")
    print(f"{knobs:25} {e['profile']:>7} {seeds[0]:>2}-{seeds[-1]:<2} "
          f"{v['mean']:6.1f} +- {v['std']:5.1f} {np.mean(rnd):9.1f} +- {np.std(rnd):5.1f} "
          f"{e['wall_time_s'] / v['episodes']:9.0f}")
    if v["episodes"] < 10:
        print(f"{'':25} ({v['episodes']} episodes: fewer than the 10 of a headline number)")
print(f"{'CEM J=1000 K=100 I=10':25} {'paper':>7} {'':5} {850:6.1f}  (Hafner et al. 2019, "
      "Table 1; cited, not measured here)")
if recorded:
    print("hardware:", "; ".join(sorted({e["hardware"] for e in recorded})))
    print("commits:", ", ".join(f"{e['name']} {e['commit']}" for e in recorded))

# %% [markdown]
# ## 6. How far ahead, and how many candidates?
#
# The horizon must be long enough to see the payoff of swinging (the pole needs a few planning
# steps of 8 control steps each to come up), and random shooting needs many candidates because
# the space of sequences grows exponentially with $H$. Three episodes per point (seeds 100-102;
# one in the smoke profile):

# %%
n_sweep = 1 if ctx.profile == "smoke" else 3  # episodes per point (seeds 100, 101, 102)
horizon_returns = []
for h in cfg.sweep_horizons:
    act = mpc.true_sim_policy(env, "cem", cfg, seed=0, horizon=h)
    horizon_returns.append(evaluate(env, act, n_sweep, seed=100, max_steps=cfg.max_steps,
                                    name=f"CEM H={h}"))
candidate_returns = []
for j in cfg.sweep_candidates:
    act = mpc.true_sim_policy(env, "shooting", cfg, seed=0, candidates=j)
    candidate_returns.append(evaluate(env, act, n_sweep, seed=100, max_steps=cfg.max_steps,
                                      name=f"shooting J={j}"))
r_mean, r_std = np.mean(random_returns), np.std(random_returns)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained", sharey=True)
cem_bars = ax[0].errorbar(cfg.sweep_horizons, np.mean(horizon_returns, 1),
                          np.std(horizon_returns, 1), fmt="o-", capsize=3,
                          label="CEM + true simulator")
ax[0].set_xlabel("CEM horizon $H$ (decisions)")
ax[0].set_title(f"CEM, J={cfg.candidates}, K={cfg.top_k}, I={cfg.iterations}", fontsize=9)
shooting_bars = ax[1].errorbar(cfg.sweep_candidates, np.mean(candidate_returns, 1),
                               np.std(candidate_returns, 1), fmt="o-", capsize=3, color="C1",
                               label="random shooting + true simulator")
ax[1].set_xscale("log")
ax[1].set_xlabel("random-shooting candidates $J$")
ax[1].set_title(f"random shooting, H={cfg.horizon}", fontsize=9)
ax[0].set_xticks(cfg.sweep_horizons)
ax[1].set_xticks(cfg.sweep_candidates, [str(j) for j in cfg.sweep_candidates])
ax[1].minorticks_off()
for a in ax:
    random_line = a.axhline(r_mean, color="grey", ls=":",
                            label="random policy, mean $\\pm$ 1 std (10 episodes)")
    a.axhspan(r_mean - r_std, r_mean + r_std, color="grey", alpha=0.2)
ax[0].set_ylabel(f"episode return (mean $\\pm$ std, {n_sweep} episodes)")
fig.legend(handles=[cem_bars, shooting_bars, random_line], loc="outside lower center",
           ncol=3, fontsize=8)
plt.show()

# %% [markdown]
# *Figure 1.5: the return against the CEM horizon $H$ (left) and the number of
# random-shooting candidates $J$ (right), with the true simulator as the model: mean and
# standard deviation of 3 episodes per point (seeds 100-102). The grey band is the random
# policy of section 1: mean $\pm$ 1 standard deviation over 10 episodes.*
#
# In the committed run the horizon matters far beyond the spread of the three episodes: with
# $H$ = 1 and 4 the returns stay near 170-210, $H$ = 8 reaches about 490 and $H$ = 12 about
# 780. Random shooting gains clearly from $J$ = 10 (about 540) to $J$ = 100 (about 720); from
# 100 to 1000 candidates (about 740) the gain is smaller than the spread of three episodes, so
# these runs cannot tell those two settings apart.

# %% [markdown]
# ## 7. A learned model, and why its errors compound
#
# Now replace the simulator by a model learned from data: an MLP that predicts the change of
# state and the reward, $M_\theta(s_t, a_t) = (\hat s_{t+1}, \hat r_{t+1})$, trained by
# regression on transitions (Vitay's lecture, "MPC - Example with a neural model"; Nagabandi et
# al. 2017). With $\bar s_t = (s_t - \mu_s) / \sigma_s$ the normalised state and
# $\mu_\Delta, \sigma_\Delta$ the statistics of the changes $s_{t+1} - s_t$ in the data,
#
# $$\hat s_{t+1} = s_t + \sigma_\Delta \odot f_\theta(\bar s_t, a_t) + \mu_\Delta, \qquad
# \hat r_{t+1} = g_\theta(\bar s_t, a_t),$$
#
# $$\mathcal L(\theta) = \mathbb E_{\mathcal D}\Big[\tfrac1{d_s} \Big\lVert f_\theta(\bar s_t,
# a_t) - \frac{s_{t+1} - s_t - \mu_\Delta}{\sigma_\Delta} \Big\rVert^2
# + \big(g_\theta(\bar s_t, a_t) - r_{t+1}\big)^2\Big].$$
#
# The algorithm (the MPC algorithm box of Vitay's lecture) learns the model, plans with it,
# collects data and retrains:
#
# ```text
# MPC with a learned model
# input: E seed episodes, R rounds, N gradient steps per round, planner CEM (section 3)
# D = transitions of E episodes of random actions
# train M_theta on D: N gradient steps on L(theta), minibatches from D
# for round = 0, 1, ..., R - 1:
#     for every decision t of one episode:                 # MPC, section 2
#         a_t = CEM(M_theta, s_t)                          # plan H steps through the model
#         execute a_t; observe r_{t+1}, s_{t+1}
#     add the episode's transitions to D
#     train M_theta on D: N more gradient steps on L(theta)
# ```
#
# The model's prediction, and below it its loss, as the code computes them:

# %%
viz.show_source(mpc.MLPDynamics.forward)

# %%
viz.show_source(mpc.MLPDynamics.loss)

# %% [markdown]
# The first two lines of the algorithm: data from random play, and a first training of the
# model.

# %%
agent = mpc.LearnedModelAgent(cfg, env.observation_space.shape[0], env.action_space.shape[0])
for i in range(cfg.seed_episodes):
    episode, _ = run_episode(env, random_policy(env), seed=1000 + i, max_steps=cfg.max_steps)
    agent.replay.add(episode)
agent.train(cfg.train_steps, progress=False)
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
for key, label in [("state_loss", "state: normalised change of state"), ("reward_loss", "reward")]:
    steps, values = agent.history[key]
    ax.semilogy(steps, viz.moving_average(values, 20), label=label)
ax.set_xlabel("gradient step")
ax.set_ylabel("mean squared error\n(moving average of 20 steps)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# *Figure 1.6: the two terms of $\mathcal L(\theta)$ while the model trains on the episodes
# of random play (log scale). The state error is in units of the
# standard deviation of the changes of state; the reward error in (reward per decision)$^2$.*
#
# **The imperfect model** (Vitay's lecture): one-step errors are small, but an open-loop rollout
# feeds predictions back in as inputs, and the error grows with every step. We roll the model
# out from real states of a fresh episode, under the actions that were really taken, and
# compare:

# %%
test_episode, _ = run_episode(env, random_policy(env), seed=5000, max_steps=cfg.max_steps)
obs_t = devices.to_device(test_episode["obs"], agent.device, torch.float32)
act_t = devices.to_device(test_episode["action"], agent.device, torch.float32)
H = min(cfg.error_horizon, len(obs_t) - 2)
starts = range(0, len(obs_t) - H - 1)
pred, _ = agent.model.rollout(obs_t[list(starts)],
                              torch.stack([act_t[s + 1:s + 1 + H] for s in starts]))
real = torch.stack([obs_t[s + 1:s + 1 + H] for s in starts])
error = (pred - real).pow(2).mean(-1).sqrt().mean(0).cpu()
pred, real = pred.cpu(), real.cpu()
ahead = np.arange(1, H + 1)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
ax[0].semilogy(ahead, error.numpy(), "o-")
ax[0].set_xlabel("decisions predicted open-loop")
ax[0].set_ylabel("RMS error over the 5 state\nvariables (their own units)")
ax[1].plot(ahead, real[0, :, 3].numpy(), label="real")
ax[1].plot(ahead, pred[0, :, 3].numpy(), "--", label="predicted open-loop")
ax[1].set_xlabel("decisions after the start state")
ax[1].set_ylabel("cart velocity $\\dot x$ (m/s)")
ax[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# *Figure 1.7: the learned model's open-loop error on a fresh episode of random actions
# (seed 5000). Left: the root-mean-square error of the predicted state against the number of
# decisions predicted without seeing the real state, averaged over all start states of the
# episode (log scale; the state mixes cart position in m, cos and sin of the pole angle,
# velocities in m/s and rad/s). Right: the cart velocity predicted from the first state of the
# episode against the real one.*
#
# MPC is the remedy: plan with the learned model, act, add the new transitions to the data,
# retrain, repeat. The loop below is the rest of the algorithm box, with the library's pieces:
# `agent.policy` plans with CEM through the model, `agent.replay` is $\mathcal D$ and
# `agent.train` takes $N$ gradient steps. Each round's episode is both new data and a test of
# the model trained so far. Round 0 plans with a model of random play only, and its return is
# one episode: it may already swing the pole up, or not (exercise 3 asks why). The planner only
# trusts 12 steps and replans after every one, so the drift of figure 1.7 matters less than it
# looks.

# %%
model_returns = []
for it in range(cfg.model_iterations):
    episode, info = run_episode(env, agent.policy(devices.generator(agent.device, it)),
                                seed=2000 + it, max_steps=cfg.max_steps)
    agent.replay.add(episode)
    model_returns.append(info["return"])
    print(f"round {it}: return {info['return']:.1f} ({agent.replay.num_steps} steps of data)")
    agent.train(cfg.train_steps, progress=False)
rounds = np.arange(len(model_returns))
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
ax.plot(rounds, model_returns, "o-", label="CEM + learned MLP model (1 episode per round)")
n = summary["cem"]["episodes"]
ax.axhline(summary["cem"]["mean"], color="C2", ls="--",
           label=f"CEM + true simulator, section 5 (mean of {n} episode{'s' * (n > 1)})")
ax.axhline(r_mean, color="grey", ls=":", label="random policy, mean $\\pm$ 1 std (10 episodes)")
ax.axhspan(r_mean - r_std, r_mean + r_std, color="grey", alpha=0.2)
ax.set_xticks(rounds)
ax.set_xlabel("round (one new episode of data each)")
ax.set_ylabel("episode return")
fig.legend(loc="outside lower center", ncol=2, fontsize=7)
plt.show()

# %% [markdown]
# *Figure 1.8: the return of the episode each round collects by planning with CEM through the
# learned model (seeds 2000, 2001, ...), against the mean of CEM with the true simulator from
# section 5 (this run's profile) and the random policy of section 1 (grey band: $\pm$ 1
# standard deviation over 10 episodes).*

# %% [markdown]
# **Does replanning matter?** Section 2 says that replanning keeps errors from accumulating.
# A measurement on the same episodes (seeds 3000, 3001, ...), planned two ways:
# as MPC (execute the first action of each plan, then plan again) and executing each $H$-step
# plan whole before planning again (`mpc.cem_policy(..., execute=k)`), so that whatever the
# plan got wrong accumulates over $H$ decisions. Whole plans can lose for two reasons: the
# model's errors (figure 1.7), and the plan itself, whose last actions were chosen with only a
# few steps left before the horizon. The same comparison with the true simulator, which has no
# model error, separates the two:

# %%
n_replan = 1 if ctx.profile == "smoke" else 3
models = {"learned model": lambda k: agent.policy(devices.generator(agent.device, 0),
                                                  execute=k),
          "true simulator": lambda k: mpc.true_sim_policy(env, "cem", cfg, seed=0, execute=k)}
replanning = {}
for model_name, make_policy in models.items():
    for k, how in ((1, "replan every decision"), (cfg.horizon, f"whole {cfg.horizon}-step plans")):
        replanning[model_name, how] = evaluate(env, make_policy(k), n_replan, seed=3000,
                                               max_steps=cfg.max_steps,
                                               name=f"{model_name}, {how}")
print(f"{'CEM with':16} {'execution':22} {'return (mean +- std)':>21}  episodes")
for (model_name, how), rets in replanning.items():
    print(f"{model_name:16} {how:22} {np.mean(rets):10.1f} +- {np.std(rets):5.1f}  "
          f"{np.round(rets, 1).tolist()}")
print(f"{'random policy (section 1)':39} {r_mean:10.1f} +- {r_std:5.1f}")

# %% [markdown]
# In the committed run replanning roughly doubles the return with either model, and most of
# what whole plans lose they lose **with the true simulator too**: about 810 against 480 there,
# about 770 against 410 with the learned model (three episodes each; the two whole-plan rows
# lie within each other's spread). So at this horizon the model's errors are not the main
# reason to replan. The plan is: executed whole, its later actions are taken with only a few
# steps of lookahead left (12 at the first action of a plan, 1 at the last, about 6 on
# average), and figure 1.5 shows what horizons between 4 and 8 earn. Replanning keeps the full
# horizon ahead of every decision, and also corrects for whatever the model got wrong; three
# episodes cannot say how much that second part adds here.

# %% [markdown]
# ## 8. What to expect
#
# Measured numbers are in the table of section 5 (read from `results/`) and in this run's
# printed outputs; this section only says what to look for.
#
# - **smoke** (CEM $J, K, I$ = 20, 4, 2; episodes cut to 6 decisions): everything runs in
#   about a minute; the returns mean nothing.
# - **quick** (200, 20, 5): CEM + true simulator close to the paper's 850 and far above the
#   random policy; random shooting with 1000 candidates a little lower. The learned MLP model
#   swings the pole up once a few of its own episodes are in the data (in the committed run
#   from round 2 on), although its open-loop error grows quickly with the horizon; round 0, one
#   episode planned through a model of random play only, may or may not swing it up. The
#   chapter takes about 15-20 minutes on 2 CPU cores once the 10-episode evaluations of section
#   5 are in `results/` (the cell below prints this run's time).
# - **gpu** (200, 20, 5): the automatic profile on a GPU (Colab). The planners are quick's (the
#   true simulator runs on the CPU cores; a GPU does not speed it up); the learned MLP model
#   runs on the GPU and trains over 8 rounds of 1000 steps instead of 4 of 400. Not yet timed.
# - **full** (1000, 100, 10, PlaNet's setting): only when chosen explicitly. PlaNet's planner
#   costs several minutes per episode on 2 CPU cores ("s/episode" in section 5's table), so the
#   whole chapter takes hours, whatever the GPU.
#
# PlaNet's paper reports 850 for CEM + true simulator (Table 1); PlaNet itself, learning from
# pixels, reached 821 after 1000 episodes (chapter 3).

# %%
print(f"chapter ran in {time.time() - chapter_start:.0f} s with profile {ctx.profile}")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (MPPI).** Replace CEM's hard top-$K$ selection by the soft weighting of model
# predictive path integral control (MPPI, Williams et al. 2017; TD-MPC, Hansen, Wang and Su
# 2022, arXiv:2203.04955, plans with it, weighting only its top $K$ candidates). Start, as CEM
# does, from $\mu = 0, \sigma = 1$; in each of the $I$ = `iterations` iterations draw the $J$ =
# `candidates` sequences $a^{(j)} \sim \mathcal N(\mu, \sigma^2)$ with `generator`, clipped to
# $[-1, 1]$, and weight **every** candidate by its return, with the temperature $\lambda$ =
# `temperature`:
#
# $$w_j = \frac{\exp(R^{(j)}/\lambda)}{\sum_{k} \exp(R^{(k)}/\lambda)}, \qquad
# \mu = \sum_j w_j\, a^{(j)}, \qquad \sigma = \sqrt{\textstyle\sum_j w_j\, (a^{(j)} - \mu)^2}.$$
#
# Subtracting the largest return before exponentiating (or `torch.softmax`) leaves the weights
# unchanged and keeps $\exp$ finite; you may floor $\sigma$ at 0.05, as TD-MPC does. Return
# $\mu_t$, a tensor of shape `(action_dim,)`. The tests use the known-optimum function of
# section 3 and others like it.

# %% tags=["solution"]
def mppi_plan(objective, horizon, action_dim, candidates=500, iterations=8, temperature=0.3,
              generator=None):
    ### BEGIN SOLUTION
    mu = torch.zeros(horizon, action_dim)
    sigma = torch.ones(horizon, action_dim)
    for _ in range(iterations):
        a = (mu + sigma * torch.randn(candidates, horizon, action_dim, generator=generator))
        a = a.clamp(-1, 1)
        w = torch.softmax(objective(a) / temperature, 0)[:, None, None]
        mu = (w * a).sum(0)
        sigma = (w * (a - mu) ** 2).sum(0).sqrt().clamp_min(0.05)
    return mu[0]
    ### END SOLUTION


# %% tags=["tests", "points-3"]
# The known optimum of section 3: R(a) = -||a - a*||^2 is largest at a*, so mu_t -> a*_0.
def quadratic_(t_):
    return lambda a: -((a - t_) ** 2).sum((1, 2))


first_ = mppi_plan(quadratic_(target), 3, 2, generator=devices.generator("cpu", 0))  # CPU toy
print("MPPI first action:", [round(x, 2) for x in first_.tolist()])
assert first_.shape == (2,), first_.shape
assert torch.allclose(first_, target[0], atol=0.1), first_
### BEGIN HIDDEN TESTS
# other horizons and action dimensions, random targets inside the box: mu_t -> a*_0
gen_ = devices.generator("cpu", 1)
for horizon_, dim_ in ((4, 1), (2, 3), (1, 1)):
    t_ = torch.rand(horizon_, dim_, generator=gen_) * 1.6 - 0.8
    first_ = mppi_plan(quadratic_(t_), horizon_, dim_, generator=devices.generator("cpu", 2))
    assert first_.shape == (dim_,), (horizon_, dim_, first_.shape)
    assert torch.allclose(first_, t_[0], atol=0.1), (horizon_, dim_, first_, t_[0])
t_ = torch.rand(5, 2, generator=gen_) * 1.6 - 0.8
first_ = mppi_plan(quadratic_(t_), 5, 2, candidates=1000, iterations=12, temperature=0.5,
                   generator=devices.generator("cpu", 3))
assert torch.allclose(first_, t_[0], atol=0.12), (first_, t_[0])
# clipping: every candidate the objective sees lies in [-1, 1] and has shape (J, H, d); with
# a* outside the box the best admissible first action is a* projected onto it, (1, -1)
far_ = torch.tensor([[1.5, -2.0], [0.3, 0.1], [0.0, -0.4]])
seen_ = []


def recording_(a):
    seen_.append((tuple(a.shape), a.min().item(), a.max().item()))
    return quadratic_(far_)(a)


first_ = mppi_plan(recording_, 3, 2, candidates=300, generator=devices.generator("cpu", 4))
assert len(seen_) == 8 and all(s[0] == (300, 3, 2) for s in seen_), seen_
assert all(-1 <= s[1] and s[2] <= 1 for s in seen_), seen_
assert torch.allclose(first_, torch.tensor([1.0, -1.0]), atol=0.1), first_
# a constant added to every return leaves the weights unchanged (no overflow, no 0/0)
first_ = mppi_plan(lambda a: quadratic_(target)(a) - 1e4, 3, 2,
                   generator=devices.generator("cpu", 5))
assert torch.isfinite(first_).all() and torch.allclose(first_, target[0], atol=0.1), first_
# lambda -> infinity: equal weights, mu stays the mean of the candidates, near 0, not at a*
first_ = mppi_plan(quadratic_(torch.full((3, 2), 0.9)), 3, 2, temperature=1e6,
                   generator=devices.generator("cpu", 6))
assert first_.abs().max() < 0.4, first_
# the noise comes from `generator`: the same seed gives the same plan
assert torch.equal(mppi_plan(quadratic_(target), 3, 2, generator=devices.generator("cpu", 7)),
                   mppi_plan(quadratic_(target), 3, 2, generator=devices.generator("cpu", 7)))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (warm start).** PlaNet restarts CEM from $\mathcal N(0, I)$ at every step.
# Write `warm_start_cem_policy(objective_from_obs, horizon, candidates, top_k, iterations,
# action_dim=1, generator=None)`, a policy `obs -> a_t` (like `mpc.cem_policy`) that keeps the
# plan $\mu_{t:t+H}$ between calls: each call runs `iterations` CEM iterations of section 3 on
# `objective_from_obs(obs)`, starting from $\mathcal N(\mu, I)$ with $\mu$ the previous plan
# shifted by one step (its first step dropped, a last step of zeros appended; zeros at the first
# call), keeps the refitted $\mu$ for the next call, and returns $\mu_t$ as a NumPy array of
# shape `(action_dim,)`. Draw the noise with `generator`.
#
# The tests give it toy objectives that change with `obs` (here the time step $t$): the return
# $-\lVert a_{t:t+H} - a^\star_{t:t+H}\rVert^2$ of a known target sequence, and compare it with
# CEM restarted from $\mathcal N(0, I)$ at every step with the same single iteration. The cell
# after them compares the returns of the two on cartpole with few iterations ($I = 2$).

# %% tags=["solution"]
def warm_start_cem_policy(objective_from_obs, horizon, candidates, top_k, iterations,
                          action_dim=1, generator=None):
    ### BEGIN SOLUTION
    plan = torch.zeros(horizon, action_dim)

    def act(obs):
        nonlocal plan
        objective = objective_from_obs(obs)
        mu, sigma = plan.clone(), torch.ones_like(plan)
        for _ in range(iterations):
            noise = torch.randn(candidates, horizon, action_dim, generator=generator)
            a = (mu + sigma * noise).clamp(-1, 1)
            elite = a[objective(a).topk(top_k).indices]
            mu, sigma = elite.mean(0), elite.std(0, unbiased=False)
        plan = torch.cat([mu[1:], torch.zeros(1, action_dim)])
        return mu[0].numpy()
    return act
    ### END SOLUTION


# %% tags=["tests", "points-3"]
def target_objective_(target_at, horizon):
    """obs = t -> the objective R(a) = -||a - a*_{t:t+H}||^2, largest at a* = target_at(t...)."""
    def objective_from_t(t):
        return quadratic_(torch.tensor(np.stack([target_at(t + k) for k in range(horizon)]),
                                       dtype=torch.float32))
    return objective_from_t


def tracking_error_(act, target_at, calls=40, check_dim=None):
    """The mean distance of a_t to the optimum a*_t over the calls after the 15th."""
    errors = []
    for t in range(calls):
        a = np.asarray(act(t), dtype=np.float64)
        if check_dim is not None:
            assert a.shape == (check_dim,) and np.abs(a).max() <= 1, a
        errors.append(np.abs(a - target_at(t)).max())
    return float(np.mean(errors[15:]))


def compare_(target_at, dim_, seed_):
    """Warm start against CEM from N(0, I) at every step (wmlib's cem_plan), one iteration each,
    H = 12, J = 200, K = 20 (the quick profile's planner)."""
    objective_ = target_objective_(target_at, 12)
    warm_ = warm_start_cem_policy(objective_, 12, 200, 20, 1, action_dim=dim_,
                                  generator=devices.generator("cpu", seed_))
    gen_ = devices.generator("cpu", seed_ + 100)

    def cold_(t):
        return cem_plan(objective_(t), 12, dim_, 200, 20, 1, generator=gen_).numpy()
    return tracking_error_(warm_, target_at, check_dim=dim_), tracking_error_(cold_, target_at)


# a constant optimum, a*_t = (0.5, 0.5): repeated calls refine the same plan
warm_error_, cold_error_ = compare_(lambda t: np.full(2, 0.5), 2, 0)
print(f"distance of a_t to the optimum: warm start {warm_error_:.3f}, "
      f"cold start {cold_error_:.3f} (1 iteration per step)")
assert warm_error_ < 0.25 and warm_error_ < 0.7 * cold_error_, (warm_error_, cold_error_)
### BEGIN HIDDEN TESTS
# an optimum that alternates sign every step: only a plan shifted by one step helps (an
# unshifted one starts every step on the opposite sign)
warm_error_, cold_error_ = compare_(lambda t: np.array([0.5, -0.5]) * (-1) ** t, 2, 1)
assert warm_error_ < 0.25 and warm_error_ < 0.7 * cold_error_, (warm_error_, cold_error_)
# one action dimension, more iterations, another horizon
def alternating_(t):
    return np.array([0.6]) * (-1) ** t


warm_ = warm_start_cem_policy(target_objective_(alternating_, 8), 8, 100, 10, 3,
                              generator=devices.generator("cpu", 2))
assert tracking_error_(warm_, alternating_, check_dim=1) < 0.15
# the candidates the objective sees: (J, H, d), inside [-1, 1]
seen_ = []


def recording_(obs):
    def objective(a):
        seen_.append((tuple(a.shape), a.min().item(), a.max().item()))
        return -(a ** 2).sum((1, 2))
    return objective


act_ = warm_start_cem_policy(recording_, 5, 30, 4, 2, action_dim=3,
                             generator=devices.generator("cpu", 3))
for t in range(3):
    act_(t)
assert len(seen_) == 6 and all(s[0] == (30, 5, 3) and -1 <= s[1] and s[2] <= 1 for s in seen_)
# the noise comes from `generator`: the same seed gives the same actions
acts_ = [warm_start_cem_policy(target_objective_(alternating_, 4), 4, 50, 5, 2,
                               generator=devices.generator("cpu", 4)) for _ in range(2)]
for t in range(5):
    assert np.array_equal(np.asarray(acts_[0](t)), np.asarray(acts_[1](t))), t
### END HIDDEN TESTS

# %% [markdown]
# On cartpole with the true simulator, few iterations ($I = 2$), one episode each:

# %%
warm = warm_start_cem_policy(lambda obs: sim.returns, cfg.horizon, cfg.candidates, cfg.top_k, 2,
                             generator=devices.generator("cpu", 0))  # the simulator: CPU
cold = mpc.true_sim_policy(env, "cem", cfg, seed=0, iterations=2)
for name, policy in [("warm start", warm), ("cold start", cold)]:
    ret = evaluate(env, policy, 1, seed=300, max_steps=cfg.max_steps)[0]
    print(f"{name}, I=2: return {ret:.1f} (1 episode, seed 300)")

# %% [markdown]
# **Exercise 2, continued (think).** Why does the warm start help most when the iterations are
# few?

# %% [markdown] tags=["answer", "points-1"]
# **Model answer.** A cold start spends its iterations finding the region of good sequences from
# the broad $\mathcal N(0, I)$: each refit narrows the belief by a fixed factor (about half per
# iteration on the toy of figure 1.2), so after $I = 2$ refits $\mu_t$ is still the mean of
# elites drawn from a wide distribution, a crude and noisy plan. Consecutive planning problems
# overlap: the state at $t + 1$ is where the plan at $t$ expected it (exactly so with the true
# simulator), so the tail $\mu_{t+1:t+H}$ of the previous plan is already close to a good plan
# for the next step. The shifted plan carries those refits over, so the iterations accumulate
# across decisions (the action executed at $t$ has been refitted at every one of the $H$ steps
# it spent in the plan, up to $H \cdot I$ times) instead of restarting from nothing. With many
# iterations the cold start converges within a single decision anyway, and the head start
# matters less; the warm start can then even cost a little, since it begins in the old plan's
# basin (the toy tests above show the gain with one iteration per step). One episode per policy
# illustrates the effect on cartpole; measuring it needs several episodes and seeds.

# %% [markdown]
# **Exercise 3 (think).** In section 7, round 0 plans with a model trained on random play only,
# and its return is a single episode. Compare it, in this run's outputs, with the later rounds
# and with the random policy.
# 1. What does random play on cartpole-swingup show the model: how often is the pole near the
#    top, and which parts of the reward does the model see? Explain how a model of random play
#    *can* be good enough for a 12-step CEM plan on this task (think of what the planner must
#    predict to start a swing, how smooth the dynamics and the reward are, and what replanning
#    after every decision forgives), and what can make it fail. Which of your explanations does
#    the round-0 return of your run support?
# 2. Round 0's return is one episode, with one seed, planned through one small model trained
#    once. What could change with another episode seed, planner seed or training seed? How would
#    you measure how good the round-0 model really is?
# 3. On a harder task, random play may never reach the rewarding states: cartpole's
#    `swingup_sparse`, which pays only when the pole is nearly upright and the cart near the
#    centre, or a task whose dynamics near the goal look nothing like those near the start.
#    What would the round-0 model predict there, what would CEM do with it, and can the
#    collect-and-retrain rounds recover?

# %% [markdown] tags=["answer", "points-3"]
# **Model answer.**
# 1. The pole starts hanging down and random pushes only rock it: it spends most of random play
#    below the horizontal and seldom gets near the top (figure 1.1). The model therefore sees
#    the lower half of the circle at moderate speeds, and rewards that are small, where the
#    `upright` factor $(\cos\theta + 1)/2$ of the reward is low; it never sees a balanced pole,
#    nor the large rewards (up to 8 per decision) near the top. It *can* still be enough: the
#    reward is smooth and grows steadily as the pole rises, so "higher is better" is visible
#    within the data; starting a swing only needs the well-covered dynamics near the bottom
#    (push in time with the pole's own swing), which are smooth and predicted well one step
#    ahead (figure 1.7's small early errors); and replanning after every decision means only
#    the first action is executed, so errors late in the 12-step plan are corrected at the
#    next step. It fails where it must extrapolate: near the top and at the high angular
#    velocities of a big swing, the model has no data, so it cannot plan the catch and the
#    balance, and CEM actively picks the sequences whose returns the model overestimates; open-
#    loop errors also compound over the horizon (figure 1.7). In the committed quick run round 0
#    returned 162.6, inside the random policy's band (116.1 $\pm$ 56.3 over 10 episodes) and
#    far from the returns of a balanced pole (about 800 with the true simulator), while rounds
#    1-3 returned 222.7, 588.1 and 646.3: it supports the failure explanation (no sign of a
#    sustained swing-up until the model had seen its own episodes), for this one episode.
# 2. Another episode seed changes the initial state; another planner seed changes CEM's
#    candidates and thus the actions; in a swing-up small differences grow, so the episode can
#    end very differently. Another training seed (initialisation, minibatch order), or other
#    seed episodes, give a model that agrees on the data but extrapolates differently outside
#    it, exactly where round 0 needs it. One return mixes all three. To measure the round-0
#    model: train several models (say 5 training seeds) on the same random-play data, evaluate
#    each with MPC on about 10 episode seeds (as section 5 does), and report the mean and
#    spread across models and episodes beside the random policy on the same seeds. Directly,
#    measure its open-loop error on held-out episodes that reach the top (for instance from
#    CEM with the true simulator), and whether it ranks candidate sequences as the true
#    simulator does (compare `model.returns` with `TrueSimulator.returns` on the same
#    candidates from the same states): CEM only needs the ranking of the candidates to be right.
# 3. With `swingup_sparse` (reward 1 only for $\cos\theta \ge 0.995$ and $|x| \le 0.25$) random
#    play essentially never earns anything, so the round-0 reward head learns to predict 0
#    everywhere. Every candidate then has about the same predicted return, CEM's elites are
#    chosen by the model's noise, and the plan is no better than random actions; the new
#    episodes look like random play, retraining confirms "reward 0", and the rounds do not
#    recover except by chance. They need something beyond the loop: an exploration bonus (for
#    example for states where an ensemble of models disagrees), a shaped reward, demonstrations,
#    or a longer reach (a value function beyond the horizon). When instead the dynamics near the
#    goal differ from those near the start, the model extrapolates there, and CEM exploits its
#    errors: the agent goes where the model is optimistic, and the data it collects there correct
#    the model. The loop can recover when the reward still points the way (as the dense reward
#    did in rounds 1-3 here), but it can waste rounds on optimistic errors, and it never visits
#    the states where the model's errors are pessimistic.

# %% [markdown]
# ## References
# - J. Vitay, *Deep Reinforcement Learning* lecture, chapter "Planning with learned world
#   models", Professur für Künstliche Intelligenz, TU Chemnitz.
# - D. Hafner, T. Lillicrap, I. Fischer, R. Villegas, D. Ha, H. Lee, J. Davidson (2019),
#   *Learning Latent Dynamics for Planning from Pixels* (PlaNet), ICML, arXiv:1811.04551:
#   Table 1 and Algorithm 2 (CEM).
# - N. Hansen, X. Wang, H. Su (2022), *Temporal Difference Learning for Model Predictive
#   Control* (TD-MPC), ICML, arXiv:2203.04955, for MPPI in latent space.
# - A. Nagabandi, G. Kahn, R. S. Fearing, S. Levine (2017), *Neural Network Dynamics for
#   Model-Based Deep Reinforcement Learning with Model-Free Fine-Tuning*, arXiv:1708.02596
#   (ICRA 2018).
# - R. Rubinstein (1999), *The cross-entropy method for combinatorial and continuous
#   optimization*, Methodology and Computing in Applied Probability; G. Williams et al. (2017),
#   *Information theoretic MPC for model-based reinforcement learning*, ICRA (MPPI).
# - D. Ha and J. Schmidhuber (2018), *World Models*, arXiv:1803.10122.
# - R. S. Sutton and A. G. Barto (2018), *Reinforcement Learning: An Introduction*, 2nd edition,
#   MIT Press.
