"""Progress bars: off on request, rare redraws where the output is not a terminal."""

import io

import pytest

pytest.importorskip("tqdm")

from hyperlr.lab.progress import NON_INTERACTIVE_INTERVAL_S, progress_bar  # noqa: E402


def test_not_a_terminal_redraws_rarely(monkeypatch):
    monkeypatch.delenv("HYPERLR_PROGRESS", raising=False)
    out = io.StringIO()  # like a papermill kernel's stream: not a terminal
    bar = progress_bar(range(500), file=out)
    assert bar.mininterval == NON_INTERACTIVE_INTERVAL_S
    for _ in bar:
        pass
    bar.close()
    # The first draw and the final one: not one line per step.
    assert out.getvalue().count("\r") <= 3


def test_switched_off(monkeypatch):
    monkeypatch.setenv("HYPERLR_PROGRESS", "0")
    out = io.StringIO()
    for _ in progress_bar(range(10), file=out):
        pass
    assert out.getvalue() == ""
