# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# What you will build and measure:
# 1. the MPC loop: plan, take the first action, replan;
# 2. two planners, **random shooting** and the **cross-entropy method (CEM)**, as PlaNet uses it;
# 3. "CEM + true simulator" on DeepMind Control's cartpole-swingup, the upper-bound row of
#    PlaNet's Table 1 (850 in the paper);
# 4. a learned MLP dynamics model planned through with the same CEM, and how its error compounds
#    with the horizon.
#
# Sources: J. Vitay's *Deep Reinforcement Learning* lecture, chapter "Planning with learned world
# models" (TU Chemnitz); the PlaNet paper (Hafner et al. 2019, arXiv:1811.04551), its CEM planner
# (Algorithm 2) and its results table, which S. Fieldman and T. Gordon's PlaNet reproduction
# (Columbia University, 2022) also quotes.

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
from wmlib import devices, envs, viz
from wmlib.agents import mpc
from wmlib.planners import cem_plan, random_shooting
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
# rewarded, at every one of the 1000 control steps, for a pole that is up, a cart that is
# centred, small pushes and a slow pole: at most 1 per step, so at most 1000 per episode. As in
# PlaNet each action is repeated 8 times, so the agent decides 125 times per episode. The
# agent here sees the true state (cart position, pole angle as cos and sin, velocities);
# chapter 3 learns from the pixels below.

# %%
env = envs.make(cfg.env_id, pixels=False)
pixel_env = envs.make(cfg.env_id, pixels=True)
episode, info = run_episode(pixel_env, random_policy(pixel_env), seed=0, max_steps=cfg.max_steps)
print(f"observation: {episode['obs'].shape[1:]} uint8 pixels; action space {env.action_space}")
viz.frame_grid(episode["obs"][::max(1, len(episode["obs"]) // 8)][:8], ncols=8)
plt.show()

# %%
random_returns = mpc.evaluate(env, random_policy(env), episodes=5, max_steps=cfg.max_steps,
                              desc="random")
print(f"random policy: {np.mean(random_returns):.1f} +- {np.std(random_returns):.1f}")

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
# plans again. Replanning is what keeps model errors from accumulating: a wrong prediction ten
# steps ahead costs nothing if we replan before we get there. In code, MPC is just a policy that
# plans on every call; `run_episode` rolls any policy out:

# %%
viz.show_source(run_episode)

# %% [markdown]
# ## 3. Two planners
#
# **Random shooting** (Vitay's lecture, "Random-sampling shooting"): sample $J$ action sequences
# uniformly, evaluate each with the model, keep the first action of the best one.

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
gen = torch.Generator().manual_seed(0)
trace = []
first = cem_plan(lambda a: -((a - target) ** 2).sum((1, 2)), horizon=3, action_dim=2,
                 candidates=500, top_k=50, iterations=8, generator=gen, trace=trace)
print("CEM first action:", [round(x, 2) for x in first.tolist()])
print("std of the belief per iteration:", [round(t["std"].mean().item(), 3) for t in trace])

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
for i, t in enumerate(trace):
    ax[0].hist(t["returns"].numpy(), bins=40, alpha=0.5, label=f"iteration {i + 1}",
               range=(-8, 0))
ax[0].set_xlabel("return of the candidates $R^{(j)}$")
ax[0].legend(fontsize=6)
ax[1].plot([t["std"].mean() for t in trace], "o-")
ax[1].set_xlabel("iteration")
ax[1].set_ylabel("mean $\\sigma$ of the belief")
fig.suptitle("CEM narrows its belief onto the optimum")
plt.show()

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
# One planning step from the first state of an episode, traced: the belief over the first
# action narrows, and the candidates' returns climb, from iteration to iteration.

# %%
obs, _ = env.reset(seed=0)
trace = []
cem_plan(sim.returns, cfg.horizon, 1, cfg.candidates, cfg.top_k, cfg.iterations,
         generator=torch.Generator().manual_seed(0), trace=trace)
fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
steps = np.arange(cfg.horizon)
for i, t in enumerate(trace):
    m, s = t["mean"][:, 0].numpy(), t["std"][:, 0].numpy()
    ax[0].plot(steps, m, color=plt.cm.viridis(i / max(1, len(trace) - 1)), label=f"it {i + 1}")
    ax[0].fill_between(steps, m - s, m + s, alpha=0.12,
                       color=plt.cm.viridis(i / max(1, len(trace) - 1)))
ax[0].set_xlabel("planning step $\\tau - t$")
ax[0].set_ylabel("action $\\mu \\pm \\sigma$")
ax[0].legend(fontsize=6, ncol=2)
ax[1].boxplot([t["returns"].numpy() for t in trace])
ax[1].set_xlabel("CEM iteration")
ax[1].set_ylabel("candidate returns over the horizon")
plt.show()

# %% [markdown]
# ### MPC with CEM and the true simulator: one episode

# %% [markdown]
# The planner simulates from the state of `env`, so it must act in that same `env`. Frames are
# rendered at 128x128 for the video only.

# %%
act = mpc.true_sim_policy(env, "cem", cfg, seed=0)
episode, info = run_episode(env, act, seed=0, render_size=128, max_steps=cfg.max_steps,
                            progress="CEM episode")
print(f"return {info['return']:.1f} in {info['steps']} decisions, {info['seconds']:.0f} s")
viz.show_video(info["frames"], fps=12)

# %%
plt.figure(figsize=(6, 2.5))
plt.plot(np.cumsum(episode["reward"]))
plt.xlabel("decision (8 control steps each)")
plt.ylabel("cumulative reward")
plt.title("swing up, then balance")
plt.show()

# %% [markdown]
# ## 5. CEM and random shooting, evaluated
#
# Both planners on the same episodes (seeds 0, 1, ...), with this profile's settings. In the
# `quick` and `full` profiles the numbers are written to `results/` with their profile,
# hardware, seed, commit and wall time.

# %%
summary = {p: mpc.evaluate_true_sim(p, ctx.profile, seed=0) for p in ("cem", "shooting")}

# %%
print(f"{'method':38} {'return':>16}")
print(f"{'random policy (ours)':38} {np.mean(random_returns):8.1f} +- {np.std(random_returns):5.1f}")
for p, s in summary.items():
    knobs = f"J={s['candidates']}" + (f", K={s['top_k']}, I={s['iterations']}" if p == "cem" else "")
    print(f"{p + ' + true simulator (ours, ' + knobs + ')':38} {s['mean']:8.1f} +- {s['std']:5.1f}")
print(f"{'CEM + true simulator (PlaNet paper)':38} {850:8.1f}   (Hafner et al. 2019, Table 1)")

# %% [markdown]
# ## 6. How far ahead, and how many candidates?
#
# The horizon must be long enough to see the payoff of swinging (the pole needs a few planning
# steps of 8 control steps each to come up), and random shooting needs many candidates because
# the space of sequences grows exponentially with $H$. One episode per point:

# %%
horizon_returns = []
for h in cfg.sweep_horizons:
    act = mpc.true_sim_policy(env, "cem", cfg, seed=0, horizon=h)
    horizon_returns.append(mpc.evaluate(env, act, 1, seed=100, max_steps=cfg.max_steps,
                                        desc=f"H={h}")[0])
candidate_returns = []
for j in cfg.sweep_candidates:
    act = mpc.true_sim_policy(env, "shooting", cfg, seed=0, candidates=j)
    candidate_returns.append(mpc.evaluate(env, act, 1, seed=100, max_steps=cfg.max_steps,
                                          desc=f"J={j}")[0])
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
ax[0].plot(cfg.sweep_horizons, horizon_returns, "o-")
ax[0].set_xlabel("CEM horizon H (decisions)")
ax[0].set_ylabel("episode return")
ax[1].semilogx(cfg.sweep_candidates, candidate_returns, "o-", color="C1")
ax[1].set_xlabel("random-shooting candidates J")
plt.show()

# %% [markdown]
# ## 7. A learned model, and why its errors compound
#
# Now replace the simulator by a model learned from data: an MLP that predicts the change of
# state and the reward, $M_\theta(s_t, a_t) = (s_{t+1}, r_{t+1})$, trained by regression on
# transitions (Vitay's lecture, "MPC - Example with a neural model"; Nagabandi et al. 2017).
# First, data from random play:

# %%
viz.show_source(mpc.MLPDynamics.forward)

# %%
agent = mpc.LearnedModelAgent(cfg, env.observation_space.shape[0], env.action_space.shape[0])
for i in range(cfg.seed_episodes):
    episode, _ = run_episode(env, random_policy(env), seed=1000 + i, max_steps=cfg.max_steps)
    agent.replay.add(episode)
agent.train(cfg.train_steps)
agent.history.plot("state_loss", "reward_loss", smooth=20, logy=True)
plt.show()

# %% [markdown]
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
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
ax[0].semilogy(np.arange(1, H + 1), error.numpy(), "o-")
ax[0].set_xlabel("steps predicted open-loop")
ax[0].set_ylabel("RMS state error")
ax[1].plot(real[0, :, 3].numpy(), label="real")
ax[1].plot(pred[0, :, 3].numpy(), "--", label="predicted")
ax[1].set_xlabel("step")
ax[1].set_ylabel("cart velocity")
ax[1].legend()
plt.show()

# %% [markdown]
# MPC is the remedy: plan with the learned model, act, add the new transitions to the data,
# retrain, repeat (the "MPC" algorithm box of Vitay's lecture). Each round below trains the model
# further and runs one episode with CEM planning through it. Cartpole's five-dimensional state is
# easy to model, so expect the learned model to do well from the first round, even though its
# 30-step predictions drift: the planner only trusts 12 steps, and it replans after every one.

# %%
model_returns = []
for it in range(cfg.model_iterations):
    episode, info = run_episode(env, agent.policy(devices.generator(agent.device, it)),
                                seed=2000 + it, max_steps=cfg.max_steps, progress=f"round {it}")
    agent.replay.add(episode)
    model_returns.append(info["return"])
    print(f"round {it}: return {info['return']:.1f} ({agent.replay.num_steps} steps of data)")
    agent.train(cfg.train_steps, progress=False)
plt.figure(figsize=(6, 3))
plt.plot(model_returns, "o-", label="CEM + learned MLP model")
plt.axhline(summary["cem"]["mean"], color="C2", ls="--", label="CEM + true simulator (ours)")
plt.axhline(np.mean(random_returns), color="grey", ls=":", label="random")
plt.xlabel("round (one episode of new data each)")
plt.ylabel("return")
plt.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## 8. What to expect
#
# | profile | CEM (J, K, I) | what you should see |
# | --- | --- | --- |
# | smoke | 20, 4, 2, episodes cut to 6 decisions | everything runs in seconds; returns mean nothing |
# | quick | 200, 20, 5 | CEM + true simulator close to the paper's 850 on 2 CPU cores (an episode takes about a minute); random shooting with 1000 candidates a little lower; the learned MLP model is good enough for CEM to swing the pole up from five random episodes of data, although its open-loop error grows quickly with the horizon |
# | gpu | 200, 20, 5 | the automatic profile on a GPU (Colab): quick's planners (the true simulator runs on the CPU cores, a GPU does not speed it up) and the learned MLP model, on the GPU, trained over 8 rounds of 1000 steps instead of 4 of 400 |
# | full | 1000, 100, 10 (PlaNet) | the paper's setting, only when chosen explicitly; about 7 minutes per episode on 2 CPU cores (the simulator runs on the CPU, a GPU does not help here). Measured: 850.3 +- 0.8 over 2 episodes (`results/ch01_cem_truesim_full.json`), the paper's 850 |
#
# What the whole chapter costs, per profile:
#
# | profile | 2 CPU cores, no GPU (measured) | Colab with a T4 GPU and 2 CPU cores |
# | --- | --- | --- |
# | smoke | about 15 s | about 15 s (estimated) |
# | quick | 13-19 minutes (this page: 769 s to the last timed cell; an earlier run 1142 s) | about the same (estimated: the same CPU-bound work) |
# | gpu | not meant for a CPU | about 20-25 minutes (estimated from quick's time; not yet measured on a GPU) |
# | full | about 8 hours (7 minutes per CEM episode) | about the same: the simulator is the cost |
#
# The measured numbers of this notebook's run are printed above and kept in `results/`
# (`ch01_cem_truesim_<profile>.json`, `ch01_shooting_truesim_<profile>.json`). PlaNet's paper
# reports 850 for CEM + true simulator (Table 1, as quoted by Fieldman and Gordon 2022); PlaNet
# itself, learning from pixels, reached 821 after 1000 episodes (chapter 3).

# %%
print(f"chapter ran in {time.time() - chapter_start:.0f} s with profile {ctx.profile}")

# %% [markdown]
# ## Exercises
#
# **Exercise 1 (MPPI).** Replace CEM's hard top-$K$ selection by MPPI's soft weighting
# (the planner of TD-MPC, Hansen et al. 2022, arXiv:2203.04955): weight each candidate by
# $w_j \propto \exp(R^{(j)}/\lambda)$ and set $\mu = \sum_j w_j a^{(j)}$. Write `mppi_plan` and
# test it on the known-optimum function above.

# %%
def mppi_plan(objective, horizon, action_dim, candidates=500, iterations=8, temperature=0.1,
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


first = mppi_plan(lambda a: -((a - target) ** 2).sum((1, 2)), 3, 2,
                  generator=torch.Generator().manual_seed(0))
assert torch.allclose(first, target[0], atol=0.1), first
print("MPPI first action:", [round(x, 2) for x in first.tolist()])

# %% [markdown]
# **Exercise 2 (warm start).** PlaNet restarts CEM from $\mathcal N(0, I)$ at every step. Write a
# policy that starts from the previous plan shifted by one step (the last step filled with
# zeros) and compare the returns with fewer iterations ($I=2$). Why does the warm start help
# most when iterations are few?

# %%
def warm_start_cem_policy(objective_from_obs, horizon, candidates, top_k, iterations):
    ### BEGIN SOLUTION
    plan = torch.zeros(horizon, 1)

    def act(obs):
        nonlocal plan
        objective = objective_from_obs(obs)
        mu, sigma = plan.clone(), torch.ones_like(plan)
        for _ in range(iterations):
            a = (mu + sigma * torch.randn(candidates, horizon, 1)).clamp(-1, 1)
            elite = a[objective(a).topk(top_k).indices]
            mu, sigma = elite.mean(0), elite.std(0, unbiased=False)
        plan = torch.cat([mu[1:], torch.zeros(1, 1)])
        return mu[0].numpy()
    return act
    ### END SOLUTION


warm = warm_start_cem_policy(lambda obs: sim.returns, cfg.horizon, cfg.candidates, cfg.top_k, 2)
cold = mpc.true_sim_policy(env, "cem", cfg, seed=0, iterations=2)
for name, policy in [("warm start", warm), ("cold start", cold)]:
    ret = mpc.evaluate(env, policy, 1, seed=300, max_steps=cfg.max_steps, desc=name)[0]
    print(f"{name}, I=2: return {ret:.1f}")

# %% [markdown]
# **Exercise 3 (think).** The learned model's reward head is trained on random-play data, in
# which the pole is almost never up. What does that do to the planner early on, and how do the
# MPC rounds of section 7 fix it?
#
# ## References
# - Ha & Schmidhuber (2018), *World Models*; Hafner et al. (2019), *Learning Latent Dynamics for
#   Planning from Pixels* (PlaNet), Table 1 and Algorithm 2.
# - Nagabandi et al. (2017), *Neural Network Dynamics for Model-Based Deep RL with Model-Free
#   Fine-Tuning*; Rubinstein (1999), the cross-entropy method; Williams et al. (2017), MPPI.
# - Hansen, Wang and Su (2022), *Temporal Difference Learning for Model Predictive Control*
#   (TD-MPC), arXiv:2203.04955, for MPPI in latent space.
# - J. Vitay, *Deep Reinforcement Learning* lecture, chapter "Planning with learned world
#   models", Professur für Künstliche Intelligenz, TU Chemnitz.
# - S. Fieldman and T. Gordon (2022), *Learning Latent Dynamics for Planning from Pixels* (a
#   PlaNet reproduction), Columbia University: results table.
