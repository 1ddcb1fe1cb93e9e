"""Pictures for the book: learning curves, frame grids, real-versus-predicted strips, videos.

Frames are ``uint8`` arrays, either ``(H, W, 3)`` or channels first ``(3, H, W)``.
"""

from __future__ import annotations

import base64
import io

import numpy as np


def _hwc(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    return frame.transpose(1, 2, 0) if frame.ndim == 3 and frame.shape[0] in (1, 3) else frame


def moving_average(values, window: int) -> np.ndarray:
    """Moving average over ``window`` points (same length: the first points average fewer)."""
    v = np.asarray(values, float)
    if window <= 1 or len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_curves(history, *keys: str, ax=None, smooth: int = 1, xlabel: str = "step",
                logy: bool = False, **kw):
    """Plot ``keys`` of a :class:`wmlib.training.History` (all keys if none are given)."""
    import matplotlib.pyplot as plt

    keys = keys or tuple(k for k in history.data if k != "wall_s")  # not a metric
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        steps, values = history[k]
        ax.plot(steps, moving_average(values, smooth), label=k, **kw)
    ax.set_xlabel(xlabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def interactive() -> bool:
    """Whether someone can move a widget: False under the book's builder and the tests
    (``WMLIB_HEADLESS=1``, set by ``python -m wmlib build`` and ``scripts/test.sh``; see
    `wmlib.progress.headless`), where nobody would, and where an ipywidgets cell can block the
    executing client until its timeout (jupyter/nbclient#312)."""
    from wmlib.progress import headless

    return not headless()


def seed_band(ax, x, runs, label: str, color=None, **kw):
    """The mean over seeds (the rows of ``runs``) as a line and their range (lowest to highest
    seed) as a band; returns the mean."""
    y = np.asarray(runs, float)
    mean = y.mean(0)
    (line,) = ax.plot(x, mean, label=f"{label} ({len(y)} seeds)", color=color, **kw)
    ax.fill_between(x, y.min(0), y.max(0), color=line.get_color(), alpha=0.15, lw=0)
    return mean


def frame_grid(frames, ncols: int = 8, titles=None, scale: float = 1.2):
    """Show frames in a grid; returns the figure."""
    import matplotlib.pyplot as plt

    frames = [_hwc(f) for f in frames]
    nrows = int(np.ceil(len(frames) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(frames):
            ax.imshow(frames[i])
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def compare_strips(real, predicted, context: int = 0, labels=("real", "predicted"),
                   scale: float = 1.0):
    """Two rows of frames: real above, predicted below; the first ``context`` frames of the
    predicted row are framed in green (the model saw them), the rest are open-loop."""
    import matplotlib.pyplot as plt

    n = len(real)
    fig, axes = plt.subplots(2, n, figsize=(n * scale, 2.2 * scale), squeeze=False)
    for row, (frames, label) in enumerate(zip((real, predicted), labels)):
        for t in range(n):
            ax = axes[row, t]
            ax.imshow(_hwc(frames[t]))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 1 and t < context:
                for s in ax.spines.values():
                    s.set_edgecolor("green")
                    s.set_linewidth(2)
            if t == 0:
                ax.set_ylabel(label, fontsize=9)
            if row == 0:
                ax.set_title(f"t={t}", fontsize=7)
    fig.tight_layout()
    return fig


def video_bytes(frames, fps: int = 30) -> tuple[bytes, str]:
    """Encode frames as MP4 (H.264, via imageio-ffmpeg) or, failing that, GIF."""
    import imageio.v2 as imageio

    frames = [_hwc(f) for f in frames]
    buf = io.BytesIO()
    try:
        imageio.mimwrite(buf, frames, format="mp4", fps=fps, macro_block_size=1)
        return buf.getvalue(), "video/mp4"
    except Exception:  # no ffmpeg: a GIF plays everywhere
        buf = io.BytesIO()
        imageio.mimwrite(buf, frames, format="gif", duration=1000 / fps, loop=0)
        return buf.getvalue(), "image/gif"


def show_video(frames, fps: int = 30, width: int = 256):
    """An inline video for Jupyter and Colab (embedded, so it survives in the saved notebook)."""
    from IPython.display import HTML

    data, mime = video_bytes(frames, fps)
    b64 = base64.b64encode(data).decode()
    if mime == "video/mp4":
        return HTML(f'<video width="{width}" controls loop autoplay muted>'
                    f'<source src="data:{mime};base64,{b64}" type="{mime}"></video>')
    return HTML(f'<img width="{width}" src="data:{mime};base64,{b64}"/>')


def save_video(frames, path, fps: int = 30) -> None:
    import imageio.v2 as imageio

    imageio.mimwrite(path, [_hwc(f) for f in frames], fps=fps)


def show_source(obj):
    """Display the source of a function or class, so the chapter shows the code it runs."""
    import inspect

    from IPython.display import Markdown

    return Markdown(f"```python\n{inspect.getsource(obj)}```")
