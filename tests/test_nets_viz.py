import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from wmlib import viz  # noqa: E402
from wmlib.nets import ConvDecoder, ConvEncoder  # noqa: E402


def test_encoder_decoder_shapes_with_leading_dims():
    enc, dec = ConvEncoder(depth=8), ConvDecoder(in_dim=5, depth=8)
    assert enc(torch.zeros(2, 3, 3, 64, 64)).shape == (2, 3, enc.embed_dim) == (2, 3, 256)
    assert dec(torch.zeros(4, 5)).shape == (4, 3, 64, 64)


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (2, 3, 32, 32), (3, 96, 96)])
def test_wrong_observation_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"expects images of shape \(\.\.\., 3, 64, 64\)"):
        ConvEncoder(depth=8)(torch.zeros(shape))


def test_video_encodes_and_moving_average_by_hand():
    frames = np.random.default_rng(0).integers(0, 255, (6, 3, 16, 16), dtype=np.uint8)
    data, mime = viz.video_bytes(frames, fps=5)
    assert mime in ("video/mp4", "image/gif") and len(data) > 100
    assert np.allclose(viz.moving_average([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])


def test_plots_draw():
    from wmlib.training import History

    h = History()
    for i in range(5):
        h.log(i, loss=1 / (i + 1))
    ax = viz.plot_curves(h, "loss", smooth=2)
    assert len(ax.lines) == 1
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    assert viz.frame_grid(frames, ncols=2).axes
    assert viz.compare_strips(frames, frames, context=2).axes


def test_seed_band_draws_the_mean_and_the_range_of_the_seeds():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    runs = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 5.0, 2.0]]
    mean = viz.seed_band(ax, [0, 1, 2], runs, "model")
    np.testing.assert_allclose(mean, [2.0, 3.0, 2.0])
    (line,) = ax.lines
    assert line.get_label() == "model (3 seeds)"
    np.testing.assert_allclose(line.get_ydata(), [2.0, 3.0, 2.0])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == 1.0 and band.max() == 5.0  # lowest and highest seed
    plt.close(fig)


def test_interactive_is_off_under_the_builder_and_the_tests(monkeypatch):
    monkeypatch.setenv("WMLIB_HEADLESS", "1")
    assert not viz.interactive()
    monkeypatch.delenv("WMLIB_HEADLESS")
    assert viz.interactive()


def test_progress_bars_are_text_when_headless(monkeypatch):
    import io

    from tqdm import tqdm as text_tqdm

    from wmlib import progress

    monkeypatch.setenv("WMLIB_HEADLESS", "1")
    bar = progress.tqdm(range(3), file=io.StringIO())
    assert isinstance(bar, text_tqdm) and bar.mininterval == 30.0
    bar.close()
    # a postfix set at every step waits for the next refresh instead of printing a line each
    out = io.StringIO()
    bar = progress.tqdm(range(1000), file=out)
    for i in bar:
        bar.set_postfix(loss=f"{i:.3g}")
    assert out.getvalue().count("\r") < 10
    assert "loss=999" in out.getvalue()  # the last postfix is shown when the bar closes
