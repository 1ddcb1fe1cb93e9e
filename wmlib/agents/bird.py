"""BIRD (Zhu, Zhang, Lee and Zhang 2020, "Bridging Imagination and Reality for Model-Based Deep
Reinforcement Learning", NeurIPS 2020): Dreamer whose behaviour learning also maximises the mutual
information between imagined and real trajectories, and its Soft-BIRD ablation.

BIRD is not a new agent but Dreamer (chapter 4, `wmlib.agents.dreamer`) with three options:

* **model error minimisation** (eq. 9): the gradient of the mutual information with respect to
  the world model is the world model's own loss (eq. 2), so the world model is Dreamer's,
  unchanged;
* **policy entropy maximisation** (eq. 10, first term): ``w * E_{s_t ~ real} H(pi(. | s_t))`` on
  the *posterior* states of the replay batch (`policy_entropy`, weight ``entropy_weight``, the
  paper's mutual-information coefficient w = 1e-8);
* **confidence-aware policy optimisation** (eq. 10, second term): each imagined trajectory's
  SVG objective (eq. 6) is weighted by the log-likelihood of its roll-out under the model,
  ``log P(tau_img_roll | tau_img)`` (`trajectory_log_likelihood`), normalised per batch and
  carrying no gradient (`confidence_weights`);
* a first-in-first-out replay of limited capacity (section 4.2: "a first-in-first-out replay
  buffer with limited capacity to mimic an approximately on-policy data stream"), the
  replay's ``capacity`` (`wmlib.replay.Replay` drops the oldest episodes).

Soft-BIRD (eq. 11-12) instead adds ``alpha * H(pi(. | s_t))`` to the imagined rewards, which
makes the lambda-return and the value soft (`soft_rewards`).

Where the authors' code (Mehooz/BIRD_code, ``bird.py`` and ``softbird.py``) makes a choice the
paper leaves open, the book follows the code and says so in chapter 6:

* the log-likelihood of a roll-out is the sum over its H steps of ``log p(s_tau | s_tau-1,
  a_tau-1)`` of the sampled latent under the prior that produced it; the weights are
  ``(x - mean) / (std + 1e-9) + 1`` over the batch of roll-outs (population std), clipped to
  ``[1 - c, 1 + c]`` with c = 1 (``reweight_clip``);
* the weights multiply the value's TD loss (eq. 7) as well as the actor's objective;
* the entropy of the tanh-Gaussian policy has no closed form: the code estimates it from 100
  samples, ``-mean log pi(a)`` (the paper writes the Gaussian's ``1/2 log 2 pi e v^2``);
* Soft-BIRD's entropy is the policy's at the imagined states, alpha = 0.2;
* every agent of the code, Dreamer and Soft-BIRD included, reads its batches from the last 100
  episodes on disk (``tools.load_episodes``'s default ``buffersize=100``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from wmlib.agents.dreamer import CONFIGS as DREAMER_CONFIGS
from wmlib.agents.dreamer import STATE_CONFIGS as DREAMER_STATE_CONFIGS
from wmlib.agents.dreamer import Dreamer, DreamerAgent, DreamerConfig
from wmlib.loop import train_agent
from wmlib.models.rssm import State


@dataclass(frozen=True)
class BIRDConfig(DreamerConfig):
    """Dreamer's fields plus BIRD's (section 5.1: discount 0.99, w = 1e-8, a FIFO replay of 100k
    environment steps, action repeat 2, Dreamer's architecture) and Soft-BIRD's alpha."""

    entropy_weight: float = 1e-8        # w: the policy's entropy on real states (eq. 10)
    confidence: bool = True             # confidence-aware policy optimisation (eq. 10)
    confidence_clip: float = 1.0        # c: the weights are clipped to [1 - c, 1 + c]
    weight_value: bool = True           # the code weights the TD loss (eq. 7) too
    entropy_samples: int = 100          # samples of the tanh-Gaussian's entropy estimate
    soft_alpha: float = 0.0             # Soft-BIRD's alpha (eq. 11-12; the code's 0.2)
    # 100k environment steps at action repeat 2: 100 episodes of 500 steps (+ first frame).
    replay_capacity: int = 100 * 501


# The laptop profile keeps the last 30 of its ~65 episodes: BIRD's 100 episodes are 10% of a
# 1000-episode run; 10% of 65 (6 episodes) is too little for a world model to learn from.
QUICK_CAPACITY = 30 * 126               # 125 steps per episode at action repeat 8, + 1 frame


def bird_config(cfg: DreamerConfig, **overrides) -> BIRDConfig:
    """BIRD on top of a Dreamer configuration: its fields, BIRD's defaults, ``overrides``."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(DreamerConfig)}
    fields.pop("replay_capacity")
    return BIRDConfig(**(fields | overrides))


def _table(dreamer_configs: dict) -> dict:
    table = {name: bird_config(cfg) for name, cfg in dreamer_configs.items()}
    table["smoke"] = dataclasses.replace(table["smoke"], replay_capacity=1000,
                                         entropy_samples=4)
    table["quick"] = dataclasses.replace(table["quick"], replay_capacity=QUICK_CAPACITY)
    return table


CONFIGS = _table(DREAMER_CONFIGS)
STATE_CONFIGS = _table(DREAMER_STATE_CONFIGS)


def soft_bird(cfg: BIRDConfig, alpha: float = 0.2) -> BIRDConfig:
    """Soft-BIRD (section 4.3): the entropy-augmented return of eq. 11-12 instead of BIRD's
    mutual-information terms (no confidence weights, no entropy on real states); the same
    replay as BIRD."""
    return dataclasses.replace(cfg, soft_alpha=alpha, confidence=False, entropy_weight=0.0)


def dreamer_fifo(cfg: BIRDConfig) -> BIRDConfig:
    """Dreamer with BIRD's FIFO replay and none of its terms (as every agent of the authors'
    code samples its last 100 episodes): what separates the replay's effect from the mutual
    information's."""
    return dataclasses.replace(cfg, confidence=False, entropy_weight=0.0, soft_alpha=0.0)


VARIANTS = {"bird": lambda cfg: cfg, "soft-bird": soft_bird, "dreamer-fifo": dreamer_fifo}


# -- the terms of eq. 10 and eq. 12 --------------------------------------------------------------
def trajectory_log_likelihood(imagined: State) -> torch.Tensor:
    """``log P(tau_img_roll | tau_img)`` of eq. 10 for roll-outs ``imagined [H, N]``: the sum over
    the H steps of the log-density of each sampled latent ``s_tau`` under the prior
    ``p(s_tau | s_tau-1, a_tau-1)`` that drew it (as BIRD's code: ``img_step(calprob=True)``).
    Returns ``[N]``."""
    stoch = imagined.stoch
    if imagined.categorical:  # one-hot samples, flattened [.., V * C] -> [.., V, C]
        stoch = stoch.unflatten(-1, imagined.mean.shape[-2:])
    return imagined.dist().log_prob(stoch).sum(0)


def confidence_weights(log_likelihood: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """The confidence weights of BIRD's policy optimisation (eq. 10, normalised per batch as
    section 4.2 says, clipped as the code does): ``(x - mean) / (std + 1e-9) + 1`` over the
    batch of roll-outs, clipped to ``[1 - clip, 1 + clip]``, with no gradient. Above-average
    confidence weighs more than 1, below-average less; the mean weight stays near 1."""
    x = log_likelihood.detach()
    z = (x - x.mean()) / (x.std(correction=0) + 1e-9) + 1
    return z.clamp(1 - clip, 1 + clip)


def policy_entropy(dist: torch.distributions.Distribution, samples: int = 100) -> torch.Tensor:
    """``H(pi(. | s))`` per state: the entropy in closed form where the distribution has one
    (a Gaussian: ``1/2 log 2 pi e v^2`` per dimension, as eq. 10 writes it), otherwise the Monte
    Carlo estimate ``-mean_k log pi(a_k | s)`` from ``samples`` reparameterized actions (the
    tanh-Gaussian, as BIRD's code estimates it), differentiable in the policy's parameters."""
    try:
        return dist.entropy()
    except NotImplementedError:
        actions = dist.rsample((samples,))
        return -dist.log_prob(actions).mean(0)


def soft_rewards(rewards: torch.Tensor, entropy: torch.Tensor, alpha: float) -> torch.Tensor:
    """Soft-BIRD's reward of eq. 11-12, ``r_t + alpha * H(pi(. | s_t))``: with it the lambda-return
    is eq. 12's soft objective and the value trained on it is the soft value ``v'(s_t) =
    E[r_t + alpha H(pi(. | s_t)) + gamma v'(s_t+1)]``."""
    return rewards + alpha * entropy


class BIRD(Dreamer):
    """Dreamer's networks and losses, with BIRD's terms in `returns` and `actor_loss` and
    Soft-BIRD's in `imagined_rewards`."""

    def imagined_rewards(self, features: torch.Tensor) -> torch.Tensor:
        rewards = super().imagined_rewards(features)
        if self.cfg.soft_alpha:  # the entropy's gradient reaches the actor (the code's choice)
            entropy = policy_entropy(self.actor(features.detach()), self.cfg.entropy_samples)
            rewards = soft_rewards(rewards, entropy, self.cfg.soft_alpha)
        return rewards

    def returns(self, imagined: State):
        """Dreamer's lambda-returns, values and discount weights, the weights multiplied by the
        confidence of each roll-out (`confidence_weights`) when ``confidence`` is on: the actor's
        objective (and, with ``weight_value``, the value's TD loss) weighs each imagined
        trajectory by how likely the model finds it."""
        lam, values, weights = super().returns(imagined)
        self.last_confidence, self.last_plain_weights = None, weights.detach()
        if self.cfg.confidence:
            conf = confidence_weights(trajectory_log_likelihood(imagined), self.cfg.confidence_clip)
            self.last_confidence = conf
            weights = weights * conf
        return lam, values, weights.detach()

    def actor_loss(self, posteriors: State):
        """Dreamer's actor loss on the (confidence-weighted) lambda-returns, minus ``w`` times
        the policy's entropy on the real (posterior) states of the batch (eq. 10)."""
        loss, imagined, lam, weights = super().actor_loss(posteriors)
        self.last_entropy = None
        if self.cfg.entropy_weight:
            features = posteriors.detach().features()
            entropy = policy_entropy(self.actor(features), self.cfg.entropy_samples).mean()
            self.last_entropy = entropy.detach()
            loss = loss - self.cfg.entropy_weight * entropy
        if not self.cfg.weight_value and self.last_confidence is not None:
            weights = self.last_plain_weights  # the TD loss without the confidence
        return loss, imagined, lam, weights


class BIRDAgent(DreamerAgent):
    """Dreamer's Algorithm 1 on the book's loop (replay, checkpoints, resume, evaluation) with
    BIRD's networks: Algorithm 1 of Zhu et al. is Dreamer's, its update eq. 5."""

    NAME = "BIRD"
    MODEL = BIRD
    PUBLISHED = ("Published BIRD (Zhu et al. 2020, figure 2): learning curves on DeepMind Control "
                 "from pixels over 10 seeds, cartpole-swingup near Dreamer's; the paper reports "
                 "curves, not a table. Cited, not ours.")

    def update(self) -> dict:
        metrics = super().update()
        d = self.dreamer
        if getattr(d, "last_confidence", None) is not None:
            metrics["confidence_min"] = float(d.last_confidence.min())
            metrics["confidence_max"] = float(d.last_confidence.max())
        if getattr(d, "last_entropy", None) is not None:
            metrics["real_entropy"] = float(d.last_entropy)
        return metrics


def configs(state: bool = False) -> dict:
    """The profiles' configurations from pixels (`CONFIGS`) or from the state."""
    return STATE_CONFIGS if state else CONFIGS


def train(profile: str | None = None, run_dir: str | Path | None = None, seed: int = 0,
          env_id: str | None = None, episodes: int | None = None, progress: bool = True,
          device=None, state: bool = False, variant: str = "bird", **overrides) -> BIRDAgent:
    """Train BIRD (``variant="bird"``), Soft-BIRD (``"soft-bird"``) or Dreamer with BIRD's
    replay (``"dreamer-fifo"``) headless in a profile
    (``python -m wmlib train bird``), from pixels or from the state."""
    if variant not in VARIANTS:
        raise ValueError(f"Unknown BIRD variant {variant!r}; choose one of {list(VARIANTS)}.")
    table = {k: VARIANTS[variant](v) for k, v in configs(state).items()}
    return train_agent(BIRDAgent, table, profile, run_dir, seed, env_id, episodes, progress,
                       device, **overrides)


__all__ = ["BIRD", "BIRDAgent", "BIRDConfig", "CONFIGS", "STATE_CONFIGS", "VARIANTS",
           "bird_config", "confidence_weights", "configs", "dreamer_fifo", "policy_entropy",
           "soft_bird",
           "soft_rewards", "train", "trajectory_log_likelihood"]
