"""Latent dynamics models of PlaNet (Hafner et al. 2019): RNN, SSM and RSSM.

One module, `LatentDynamics`, implements the three designs compared in PlaNet; `kind` picks one:

* ``"rnn"``:  deterministic only, a GRU ``h_t = f(h_{t-1}, a_{t-1}, o_t)`` that reads the
  observation while filtering and zeros in its place while imagining (PlaNet's zero-observation
  convention). The state has no stochastic part, so there is no KL; and as nothing in the ELBO
  then trains the imagining step, train it with `wmlib.objectives.observation_overshooting`.
* ``"ssm"``:  stochastic only, the transition ``p(s_t | s_{t-1}, a_{t-1})`` of PlaNet's eq. (2)
  is a Gaussian whose mean and std come from an MLP.
* ``"rssm"``: both, PlaNet's eq. (4): deterministic state model ``h_t = f(h_{t-1}, s_{t-1},
  a_{t-1})`` (a GRU), stochastic state model ``s_t ~ p(s_t | h_t)``, and the encoder
  ``q(s_t | h_t, o_t)``. PlaNet sizes: belief 200, state 30, hidden 200, min std 0.1, ELU.

Equation and section numbers refer to the PlaNet paper (Hafner et al. 2019, "Learning Latent
Dynamics for Planning from Pixels", arXiv:1811.04551).

Conventions (the same for every method and for `wmlib.objectives`):

* **Time-major.** Sequences are ``[T, B, ...]`` (time, batch, features), as in danijar/dreamer
  after its swap; a ``[B, T, ...]`` batch from a replay buffer goes in as ``x.transpose(0, 1)``.
* **Actions are the previous actions.** ``actions[t]`` is ``a_{t-1}``, the action that led to
  observation ``o_t`` (zeros at the first step of an episode). A buffer that stores ``(o_t, a_t)``
  pairs, with ``a_t`` taken *after* ``o_t``, is shifted by one step first:
  ``torch.cat([torch.zeros_like(a[:1]), a[:-1]])``.
* **One state, three kinds.** `State` always holds ``mean, std, stoch`` (size ``stoch_size``) and
  ``deter`` (size ``deter_size``); a part that a kind does not have has size 0 (``stoch`` of the
  RNN, ``deter`` of the SSM). ``State.features()`` is ``[deter, stoch]`` for every kind, so
  decoders and reward heads take ``dynamics.feature_size`` inputs whatever the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch
from torch import nn
from torch.distributions import Independent, Normal, OneHotCategoricalStraightThrough
from torch.nn import functional as F

from wmlib.dreamerv3 import unimix
from wmlib.nets import ACTIVATIONS, mlp

KINDS = ("rnn", "ssm", "rssm")


@dataclass(frozen=True, eq=False)
class State:
    """A latent state, or a stack of them: every field has shape ``[*lead, size]``.

    ``mean`` and ``std`` describe the Gaussian over the stochastic state (the prior
    ``p(s_t | ...)`` or the posterior ``q(s_t | ...)``), ``stoch`` is a sample of it and ``deter``
    is the deterministic belief ``h_t``. ``lead`` is ``[B]`` for one step, ``[T, B]`` for sequences.

    With DreamerV2's categorical latents, ``mean`` holds the logits ``[*lead, V, C]`` of V
    categorical variables of C classes, ``std`` is empty (``[*lead, 0]``) and ``stoch`` is the
    flattened one-hot sample ``[*lead, V * C]``.
    """

    mean: torch.Tensor
    std: torch.Tensor
    stoch: torch.Tensor
    deter: torch.Tensor

    def features(self) -> torch.Tensor:
        """``[deter, stoch]``: what decoders, reward heads and policies see, ``[*lead, F]``."""
        return torch.cat([self.deter, self.stoch], -1)

    @property
    def categorical(self) -> bool:
        """Whether the stochastic state is categorical (DreamerV2) rather than Gaussian."""
        return self.mean.dim() > self.stoch.dim()

    def dist(self) -> Independent:
        """The distribution over ``s_t``: a diagonal Gaussian, or V independent categoricals
        (one-hot, with straight-through gradients); its event is the latent dimensions."""
        if self.categorical:
            return Independent(OneHotCategoricalStraightThrough(logits=self.mean), 1)
        return Independent(Normal(self.mean, self.std), 1)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> State:
        """Apply ``fn`` to every field, e.g. ``state.map(lambda x: x[:, :5])``."""
        return State(*map(fn, _fields(self)))

    def __getitem__(self, index) -> State:
        """Index the leading dimensions: ``posteriors[t]`` is the state at time ``t``."""
        return self.map(lambda x: x[index])

    def detach(self) -> State:
        """The stop-gradient ``sg(.)`` of every field."""
        return self.map(torch.Tensor.detach)

    def flatten(self) -> State:
        """Merge all leading dimensions into one batch: ``[T, B, n] -> [T * B, n]``.

        ``posteriors.detach().flatten()`` starts one imagined rollout from every posterior state
        of a training batch, as Dreamer does.
        """
        last = self.deter.dim() - 2  # the last leading dimension
        return self.map(lambda x: x.flatten(0, last))

    def unflatten(self, dim: int, sizes: tuple[int, ...]) -> State:
        """Split leading dimension ``dim`` into ``sizes``, as `torch.Tensor.unflatten`.

        ``state.unflatten(0, (T, B))`` undoes `flatten`; ``imagined.unflatten(1, (T, B))`` splits
        rollouts ``[H, T * B]`` started from every posterior into ``[H, T, B]``.
        """
        return self.map(lambda x: x.unflatten(dim, sizes))

    @staticmethod
    def stack(states: Sequence[State], dim: int = 0) -> State:
        """Stack per-step states into one state with a new time dimension."""
        return State(*(torch.stack(xs, dim) for xs in zip(*(_fields(s) for s in states))))


def _rsample(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """A reparameterized sample ``mean + std * eps``, ``eps ~ N(0, I)``: what
    ``Normal(mean, std).rsample()`` draws, without building (and validating) a distribution
    object at every step of the scan."""
    eps = torch.randn_like(std, dtype=torch.float32)  # float32 noise, also in bf16, so that
    # both paths draw the same numbers from the same seed
    return (mean + std * eps).to(mean.dtype)


def _fields(state: State) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(state, f.name) for f in fields(state))


class LatentDynamics(nn.Module):
    """The PlaNet latent dynamics: an RNN, an SSM or an RSSM, chosen by ``kind``.

    Args:
        action_size: size of the action vector ``a_t``.
        embed_size: size of the encoder output ``e_t = enc(o_t)`` that the posterior sees.
        kind: ``"rnn"``, ``"ssm"`` or ``"rssm"`` (see the module docstring).
        stoch_size: size of the stochastic state ``s_t`` (unused, and 0, for ``"rnn"``).
        deter_size: size of the deterministic belief ``h_t`` (unused, and 0, for ``"ssm"``).
        hidden_size: width of the hidden layers.
        min_std: lower bound added to the softplus std of every Gaussian, as in PlaNet.
        act: activation, a key of `wmlib.nets.ACTIVATIONS`.
        classes: 0 for Gaussian latents; C > 0 for DreamerV2's categorical latents, where
            ``stoch_size`` counts the variables V (DreamerV2: 32 of 32 classes), sampled as
            one-hot vectors with straight-through gradients (``kind="rssm"`` only).
        unimix: DreamerV3's mix of each categorical with ``unimix`` uniform (0.01;
            `wmlib.dreamerv3.unimix`); 0 leaves the logits as they are.
        norm: LayerNorm in the hidden layers (DreamerV3).
    """

    def __init__(
        self,
        action_size: int,
        embed_size: int,
        kind: str = "rssm",
        stoch_size: int = 30,
        deter_size: int = 200,
        hidden_size: int = 200,
        min_std: float = 0.1,
        act: str = "elu",
        classes: int = 0,
        unimix: float = 0.0,
        norm: bool = False,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if classes and kind != "rssm":
            raise ValueError(f"categorical latents (classes={classes}) are DreamerV2's RSSM: "
                             f"use kind='rssm', not {kind!r}")
        self.kind, self.classes, self.variables = kind, classes, stoch_size
        self.unimix = unimix
        self.action_size = action_size
        self.embed_size = embed_size
        stats = stoch_size * classes if classes else 2 * stoch_size  # logits, or mean and std
        if classes:
            stoch_size = stoch_size * classes  # the one-hot sample, flattened
        self.stoch_size = 0 if kind == "rnn" else stoch_size
        self.deter_size = 0 if kind == "ssm" else deter_size
        self.feature_size = self.deter_size + self.stoch_size
        self.min_std = min_std
        if kind == "ssm":
            # p(s_t | s_{t-1}, a_{t-1}) and q(s_t | s_{t-1}, a_{t-1}, o_t), the latter through the
            # prior's statistics as in PlaNet's SSM.
            self.prior_net = mlp(stoch_size + action_size, 2 * stoch_size, hidden_size, 1, act)
            self.post_net = mlp(2 * stoch_size + embed_size, 2 * stoch_size, hidden_size, 1, act)
            return
        # h_t = f(h_{t-1}, s_{t-1}, a_{t-1}); the RNN also feeds o_t (zeros when imagining).
        cell_in = self.stoch_size + action_size + (embed_size if kind == "rnn" else 0)
        self.cell_in = nn.Sequential(nn.Linear(cell_in, hidden_size),
                                     *([nn.LayerNorm(hidden_size)] if norm else []),
                                     ACTIVATIONS[act]())
        self.cell = nn.GRUCell(hidden_size, deter_size)
        if kind == "rssm":
            # p(s_t | h_t) and q(s_t | h_t, o_t).
            self.prior_net = mlp(deter_size, stats, hidden_size, 1, act, norm)
            self.post_net = mlp(deter_size + embed_size, stats, hidden_size, 1, act, norm)

    def initial(self, batch_size: int) -> State:
        """The fixed initial state ``s_0`` (zeros; std one, or uniform logits), on the device
        of the parameters."""
        param = next(self.parameters())
        stoch = param.new_zeros(batch_size, self.stoch_size)
        deter = param.new_zeros(batch_size, self.deter_size)
        if self.classes:
            logits = param.new_zeros(batch_size, self.variables, self.classes)
            return State(logits, param.new_zeros(batch_size, 0), stoch, deter)
        return State(stoch, torch.ones_like(stoch), stoch, deter)

    def img_step(self, prev_state: State, prev_action: torch.Tensor) -> State:
        """One step of the prior ``p(s_t | s_{t-1}, a_{t-1})``, PlaNet's eq. (2) / eq. (4).

        ``prev_state``: ``[B]``; ``prev_action``: ``[B, A]``. Returns the prior state ``[B]`` with
        a reparameterized sample ``stoch``.
        """
        if self.kind == "ssm":
            inputs = torch.cat([prev_state.stoch, prev_action], -1)
            return self._stochastic(self.prior_net(inputs), prev_state.deter)
        inputs = [prev_state.stoch, prev_action]
        if self.kind == "rnn":
            inputs.append(prev_action.new_zeros(*prev_action.shape[:-1], self.embed_size))
        deter = self.cell(self.cell_in(torch.cat(inputs, -1)), prev_state.deter)
        if self.kind == "rnn":
            return State(prev_state.mean, prev_state.std, prev_state.stoch, deter)
        return self._stochastic(self.prior_net(deter), deter)

    def obs_step(
        self, prev_state: State, prev_action: torch.Tensor, embed: torch.Tensor
    ) -> tuple[State, State]:
        """One filtering step: the posterior ``q(s_t | h_t, o_t)`` and the prior.

        The posterior is PlaNet's encoder (Section 3: ``q(s_t | s_{t-1}, a_{t-1}, o_t)`` for the
        SSM, ``q(s_t | h_t, o_t)`` for the RSSM, given in the text around eqs. (2)-(4)).

        ``prev_state``: ``[B]``; ``prev_action``: ``[B, A]``; ``embed``: ``[B, E]``. Returns
        ``(posterior, prior)``, both ``[B]``; the KL between them is the regularizer of the ELBO,
        PlaNet's eq. (3). For the RNN the posterior belief is the GRU step that sees ``o_t``
        and the prior the one that does not.
        """
        prior = self.img_step(prev_state, prev_action)
        if self.kind == "rnn":
            inputs = torch.cat([prev_state.stoch, prev_action, embed], -1)
            deter = self.cell(self.cell_in(inputs), prev_state.deter)
            return State(prior.mean, prior.std, prior.stoch, deter), prior
        if self.kind == "ssm":
            inputs = torch.cat([prior.mean, prior.std, embed], -1)
        else:
            inputs = torch.cat([prior.deter, embed], -1)
        return self._stochastic(self.post_net(inputs), prior.deter), prior

    def observe(
        self, embed: torch.Tensor, actions: torch.Tensor, state: State | None = None
    ) -> tuple[State, State]:
        """Filter a sequence: ``embed [T, B, E]``, ``actions [T, B, A]``, ``actions[t] = a_{t-1}``.

        Starts from ``state`` (``[B]``, default `initial`) and returns ``(posteriors, priors)``,
        each a `State` of ``[T, B, ...]``: ``posteriors[t] = q(s_t | o_{<=t}, a_{<t})`` and
        ``priors[t] = p(s_t | s_{t-1}, a_{t-1})`` with ``s_{t-1}`` drawn from ``posteriors[t-1]``.
        """
        if embed.shape[:2] != actions.shape[:2]:
            raise ValueError(
                f"embed {tuple(embed.shape)} and actions {tuple(actions.shape)} must share the "
                "leading [T, B] dimensions (time-major)"
            )
        if state is None:
            state = self.initial(embed.shape[1])
        posteriors, priors = [], []
        for t in range(embed.shape[0]):
            state, prior = self.obs_step(state, actions[t], embed[t])
            posteriors.append(state)
            priors.append(prior)
        return State.stack(posteriors), State.stack(priors)

    def imagine(self, actions: torch.Tensor, start_state: State) -> State:
        """Open-loop prior rollout under given actions: ``actions [H, B, A]`` from ``start_state``.

        Returns the priors ``[H, B, ...]``; ``priors[k]`` follows ``actions[k]``, i.e. it is a
        sample path of the multi-step prediction ``p(s_{t+k+1} | s_t, a_{t:t+k})`` of PlaNet's
        eq. (5). The start state (``[B]``) itself is not included.
        """
        state, priors = start_state, []
        for action in actions:
            state = self.img_step(state, action)
            priors.append(state)
        return State.stack(priors)

    def imagine_with_policy(
        self, start_state: State, policy_fn: Callable[[torch.Tensor], torch.Tensor], horizon: int
    ) -> tuple[State, torch.Tensor]:
        """Roll the prior forward with actions from ``policy_fn(features [B, F]) -> [B, A]``.

        Returns ``(priors [H, B, ...], actions [H, B, A])``: ``actions[k]`` is chosen in the state
        before ``priors[k]`` (``start_state`` for ``k = 0``). Gradients flow through the dynamics
        and the policy; detach ``start_state`` or the features inside ``policy_fn`` where a method
        asks for it (Dreamer does both).
        """
        state, priors, actions = start_state, [], []
        for _ in range(horizon):
            action = policy_fn(state.features())
            state = self.img_step(state, action)
            priors.append(state)
            actions.append(action)
        return State.stack(priors), torch.stack(actions)

    def _stochastic(self, stats: torch.Tensor, deter: torch.Tensor) -> State:
        """The state whose stochastic part has the statistics ``stats`` (a network's output),
        with a reparameterized (Gaussian) or straight-through (categorical) sample."""
        if self.classes:
            logits = stats.unflatten(-1, (self.variables, self.classes))
            if self.unimix:  # DreamerV3: 1% uniform in every categorical
                logits = unimix(logits, self.unimix)
            sample = OneHotCategoricalStraightThrough(logits=logits).rsample()
            return State(logits, stats.new_zeros(*stats.shape[:-1], 0), sample.flatten(-2), deter)
        mean, std = self._gaussian(stats)
        return State(mean, std, _rsample(mean, std), deter)

    def _gaussian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = x.chunk(2, -1)
        # softplus of a contiguous copy: on the strided half of ``x`` PyTorch's CPU kernel is
        # about 10 times slower (measured: 475 against 43 us for 1000 x 30 values)
        return mean, F.softplus(std.contiguous()) + self.min_std
