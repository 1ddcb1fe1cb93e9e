"""Progress bars: tqdm's notebook widget where someone is watching, plain text where nobody is.

The book's builder (``python -m wmlib build``) and its tests set ``WMLIB_HEADLESS=1``; there
every bar is tqdm's text bar, refreshed at most every 30 seconds, so that an executed notebook
saves a line of text per bar instead of a widget and its state."""

from __future__ import annotations

import os

from tqdm import tqdm as text_tqdm
from tqdm.auto import tqdm as auto_tqdm


def headless() -> bool:
    """True when nobody watches the output (``WMLIB_HEADLESS`` is 1, true or yes)."""
    return os.environ.get("WMLIB_HEADLESS", "").strip().lower() in ("1", "true", "yes")


class QuietBar(text_tqdm):
    """tqdm's text bar whose ``set_postfix`` waits for the bar's next refresh (``mininterval``)
    instead of printing a line at every call: a training loop sets its losses at every update,
    which would otherwise write thousands of lines into an executed notebook."""

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        super().set_postfix(ordered_dict, refresh=refresh, **kwargs)


def tqdm(*args, **kwargs):
    """`tqdm.auto.tqdm`, or the quiet text bar (`QuietBar`) when `headless`."""
    if headless():
        kwargs.setdefault("mininterval", 30.0)
        return QuietBar(*args, **kwargs)
    return auto_tqdm(*args, **kwargs)
