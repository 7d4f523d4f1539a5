"""nbval runs the chapters as the book is built on a machine without data sets or network.

Every kernel nbval starts for a chapter gets the environment of ``tests/hidden_data.py``: a hook
makes every data loader and every connection off this machine fail. The hook also logs each
attempt, and the wrapper below fails the cell that made one, so that a chapter that catches the
error (``except Exception``) fails its test all the same. One execution of each chapter thus
tests both that it runs and that it reads nothing but the committed results and the authors'
curves.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hidden_data import attempts, hide_data_from_nbval_kernels  # noqa: E402

_BASE = Path(tempfile.mkdtemp(prefix="hyperlr-hidden-data-"))
HIDDEN, _undo = hide_data_from_nbval_kernels(_BASE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    before = len(attempts(HIDDEN))
    result = yield
    tried = attempts(HIDDEN)[before:]
    if tried:
        raise AssertionError(f"{item.nodeid} tried to read data or the network:\n{tried}")
    written = list(Path(HIDDEN["HYPERLR_DATA_DIR"]).iterdir())
    if written:
        raise AssertionError(f"{item.nodeid} wrote into the empty data folder: {written}")
    return result


def pytest_unconfigure(config):
    _undo()
    shutil.rmtree(_BASE, ignore_errors=True)
