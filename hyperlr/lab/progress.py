"""Progress bars that do not flood a notebook.

In a terminal a tqdm bar redraws one line in place. Where the output is not a terminal (a
papermill run, a CI log, a Jupyter kernel, whose output stream keeps every update), each redraw
becomes a new line; there :func:`progress_bar` redraws at most once every
:data:`NON_INTERACTIVE_INTERVAL_S` seconds. ``HYPERLR_PROGRESS=0`` turns every bar off.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm import tqdm

#: Seconds between two redraws of a bar whose output is not a terminal.
NON_INTERACTIVE_INTERVAL_S = 60.0


def progress_bar(*args: Any, disable: bool = False, **kwargs: Any) -> tqdm:
    """A :class:`tqdm.tqdm` bar, off when ``disable`` or ``HYPERLR_PROGRESS=0``, and redrawn
    at most once a minute when standard error is not a terminal (arguments as tqdm's)."""
    if os.environ.get("HYPERLR_PROGRESS", "1").strip() in {"0", "false", "no", "off"}:
        disable = True
    stream = kwargs.get("file") or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()):
        kwargs.setdefault("mininterval", NON_INTERACTIVE_INTERVAL_S)
        kwargs.setdefault("maxinterval", max(NON_INTERACTIVE_INTERVAL_S, 10.0))
    return tqdm(*args, disable=disable, **kwargs)
