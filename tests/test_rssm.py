"""Tests of wmlib.models.rssm: shapes, consistency between entry points, and a learning check."""

import pytest
import torch

from wmlib.models.rssm import LatentDynamics, State
from wmlib.nets import mlp
from wmlib.objectives import kl_loss, observation_overshooting, reconstruction_loss

T, B, A, E, H = 5, 3, 2, 6, 4
SIZES = dict(stoch_size=4, deter_size=8, hidden_size=16)
FEATURES = {"rnn": 8, "ssm": 4, "rssm": 12}
KINDS = list(FEATURES)


def make(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    dynamics = LatentDynamics(A, E, kind, **SIZES)
    return dynamics, torch.randn(T, B, E), torch.randn(T, B, A)


def assert_states_close(a: State, b: State) -> None:
    for x, y in zip((a.mean, a.std, a.stoch, a.deter), (b.mean, b.std, b.stoch, b.deter)):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("kind", KINDS)
def test_observe_and_imagine_shapes(kind):
    dynamics, embed, actions = make(kind)
    stoch, deter = {"rnn": (0, 8), "ssm": (4, 0), "rssm": (4, 8)}[kind]
    assert dynamics.feature_size == FEATURES[kind]
    posteriors, priors = dynamics.observe(embed, actions)
    for state in (posteriors, priors):
        assert state.mean.shape == state.std.shape == state.stoch.shape == (T, B, stoch)
        assert state.deter.shape == (T, B, deter)
        assert state.features().shape == (T, B, FEATURES[kind])
    imagined = dynamics.imagine(torch.randn(H, B, A), posteriors[-1])
    assert imagined.features().shape == (H, B, FEATURES[kind])
    # One rollout from every posterior state of the batch, as Dreamer starts its imagination.
    start = posteriors.detach().flatten()
    assert start.features().shape == (T * B, FEATURES[kind])
    imagined, taken = dynamics.imagine_with_policy(start, mlp(FEATURES[kind], A, 8, 1), H)
    assert imagined.features().shape == (H, T * B, FEATURES[kind])
    assert taken.shape == (H, T * B, A)
    assert imagined.unflatten(1, (T, B)).features().shape == (H, T, B, FEATURES[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_priors_of_observe_are_img_steps_from_the_previous_posteriors(kind):
    dynamics, embed, actions = make(kind)
    posteriors, priors = dynamics.observe(embed, actions)
    previous = State.stack([dynamics.initial(B), *(posteriors[t] for t in range(T - 1))])
    again = dynamics.img_step(previous.flatten(), actions.flatten(0, 1)).unflatten(0, (T, B))
    # The sample is drawn anew; its distribution and the belief are deterministic functions.
    torch.testing.assert_close(again.mean, priors.mean)
    torch.testing.assert_close(again.std, priors.std)
    torch.testing.assert_close(again.deter, priors.deter)


@pytest.mark.parametrize("kind", KINDS)
def test_imagine_equals_repeated_img_step(kind):
    dynamics, embed, actions = make(kind)
    posteriors, _ = dynamics.observe(embed, actions)
    start, plan = posteriors[2], torch.randn(H, B, A)
    torch.manual_seed(1)
    imagined = dynamics.imagine(plan, start)
    torch.manual_seed(1)
    state, states = start, []
    for action in plan:
        state = dynamics.img_step(state, action)
        states.append(state)
    assert_states_close(imagined, State.stack(states))


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_sees_the_observation_and_prior_does_not(kind):
    dynamics, embed, actions = make(kind)
    state = dynamics.initial(B)
    torch.manual_seed(1)
    post_a, prior_a = dynamics.obs_step(state, actions[0], embed[0])
    torch.manual_seed(1)
    post_b, prior_b = dynamics.obs_step(state, actions[0], embed[0] + 1.0)
    assert_states_close(prior_a, prior_b)
    assert not torch.allclose(post_a.features(), post_b.features())


def test_rnn_state_is_deterministic_and_has_no_kl():
    dynamics, embed, actions = make("rnn")
    torch.manual_seed(1)
    posteriors, priors = dynamics.observe(embed, actions)
    torch.manual_seed(2)
    again, _ = dynamics.observe(embed, actions)
    assert_states_close(posteriors, again)
    torch.testing.assert_close(posteriors.features(), posteriors.deter)
    assert kl_loss(posteriors, priors, free_nats=0.0).item() == 0.0


def test_initial_state_follows_the_parameters():
    dynamics, embed, actions = make("rssm")
    dynamics = dynamics.double()
    initial = dynamics.initial(B)
    assert initial.deter.dtype == torch.float64 and initial.deter.device == embed.device
    posteriors, _ = dynamics.observe(embed.double(), actions.double())
    assert posteriors.features().dtype == torch.float64


def test_state_helpers_round_trip():
    dynamics, embed, actions = make("rssm")
    posteriors, _ = dynamics.observe(embed, actions)
    assert_states_close(posteriors.flatten().unflatten(0, (T, B)), posteriors)
    assert_states_close(State.stack([posteriors[t] for t in range(T)]), posteriors)
    assert not posteriors.detach().features().requires_grad


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        LatentDynamics(A, E, "lstm")
    dynamics, embed, actions = make("rssm")
    with pytest.raises(ValueError):
        dynamics.observe(embed, actions[:-1])


PIXELS = torch.linspace(-1.5, 1.5, 12)


def point_sequences(steps: int, batch: int, generator: torch.Generator):
    """A point on a line moved by its actions, seen as a 12-pixel 1-D image (a Gaussian bump).

    Time-major; ``actions[t]`` moved the point to its position at ``t`` (``actions[0] = 0``).
    """
    actions = torch.rand(steps, batch, 1, generator=generator) * 2 - 1
    actions[0] = 0
    start = torch.rand(batch, generator=generator) * 2 - 1
    position = (start + 0.3 * actions[..., 0].cumsum(0)).clamp(-1.5, 1.5)
    return torch.exp(-((position[..., None] - PIXELS) ** 2) / (2 * 0.2**2)), actions


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, overshooting, updates",
    # The RNN has no KL that trains its open-loop step, so it gets observation overshooting.
    [("rssm", 0, 800), ("rnn", 3, 500)],
)
def test_model_learns_to_reconstruct_and_predict_a_moving_point(kind, overshooting, updates):
    torch.manual_seed(0)
    dynamics = LatentDynamics(1, 16, kind, stoch_size=4, deter_size=16, hidden_size=32)
    encoder, decoder = mlp(12, 16, 32, 1), mlp(dynamics.feature_size, 12, 32, 1)
    modules = torch.nn.ModuleList([dynamics, encoder, decoder])
    optimizer = torch.optim.Adam(modules.parameters(), lr=1e-2)
    data = torch.Generator().manual_seed(1)
    obs, actions = point_sequences(12, 64, data)

    @torch.no_grad()
    def errors() -> tuple[float, float]:
        """Squared errors of the reconstructions and of 8-step open-loop predictions."""
        posteriors, _ = dynamics.observe(encoder(obs), actions)
        reconstruction = (decoder(posteriors.features()) - obs) ** 2
        predicted = decoder(dynamics.imagine(actions[4:], posteriors[3]).features())
        prediction = (predicted - obs[4:]) ** 2
        return reconstruction.sum(-1).mean().item(), prediction.sum(-1).mean().item()

    start = errors()
    for _ in range(updates):
        batch_obs, batch_actions = point_sequences(12, 32, data)
        posteriors, priors = dynamics.observe(encoder(batch_obs), batch_actions)
        loss = reconstruction_loss(decoder(posteriors.features()), batch_obs, event_dims=1)
        loss = loss + kl_loss(posteriors, priors, free_nats=1.0)
        if overshooting:
            loss = loss + observation_overshooting(
                dynamics, decoder, posteriors, batch_actions, batch_obs, overshooting, event_dims=1
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    end = errors()
    # A model that ignores the actions and predicts the point stays where it was last seen.
    hold_still = ((obs[3:4] - obs[4:]) ** 2).sum(-1).mean().item()
    assert end[0] < 0.3 * start[0]
    assert end[1] < 0.4 * start[1] and end[1] < 0.5 * hold_still
