"""The chapters build from the committed results alone: no data set, no network.

nbval runs every chapter in a kernel with the environment of ``tests/hidden_data.py`` (see
``chapters/conftest.py``), so a chapter that reads a data set or the network fails its notebook
test. These tests check that machinery: the hook refuses what it must, the kernels nbval starts
for the chapters get it, and an attempt that a chapter catches is still reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from hidden_data import attempts, hidden_environment, hide_data_from_nbval_kernels

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"

RUNNER = """
import sys
import nbformat
from nbclient import NotebookClient

notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}
).execute()
"""


@pytest.fixture(scope="module")
def hidden(tmp_path_factory) -> dict[str, str]:
    """The environment of a machine without data sets or network, and the hook's log."""
    try:
        return hidden_environment(tmp_path_factory.mktemp("hidden"))
    except (OSError, ValueError) as error:
        pytest.skip(f"the authors' curves are neither in HYPERLR_PAPER_CURVES nor cached: {error}")


def test_the_hook_refuses_every_loader_and_the_network(hidden):
    probe = """
import socket
from hyperlr.lab.data import DATASETS, fashion_mnist, load_dataset
from hyperlr.lab.train import load_data, RunConfig
from hyperlr.lab.sizes import data_shape
import torchvision.datasets

refused = []
for attempt in (
    lambda: load_dataset("fashion_mnist"),
    lambda: load_dataset("integral"),
    lambda: load_data(RunConfig(dataset="digits", scheduler="N", epochs=1)),
    lambda: DATASETS["sunspots"](),
    lambda: fashion_mnist(download=False),
    lambda: torchvision.datasets.FashionMNIST("x", download=True),
    lambda: socket.create_connection(("192.0.2.1", 80), timeout=1),
):
    try:
        attempt()
    except RuntimeError as error:
        refused.append(type(error).__name__)
print(refused.count("HiddenDataError"), load_dataset("oscillator", train_subset=5).n_train)
print(data_shape("fashion_mnist", train_subset=6000).n_train)
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], env=hidden, capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "5", "6000"]
    assert attempts(hidden).count("\n") >= 7
    Path(hidden["HYPERLR_HIDDEN_DATA_LOG"]).unlink()


def test_a_caught_attempt_is_still_logged(hidden, tmp_path):
    # A chapter that hides a data load behind `except Exception` runs without error, but the
    # log the notebook tests read (chapters/conftest.py) records the attempt.
    planted = tmp_path / "planted.ipynb"
    source = textwrap.dedent(
        """
        from hyperlr.lab.data import load_dataset
        try:
            load_dataset("fashion_mnist")
        except Exception:
            pass
        """
    )
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), planted)
    Path(hidden["HYPERLR_HIDDEN_DATA_LOG"]).unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(planted), str(CHAPTERS)],
        env=hidden,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "the data set 'fashion_mnist' (load_dataset)" in attempts(hidden)
    Path(hidden["HYPERLR_HIDDEN_DATA_LOG"]).unlink()


def test_the_kernels_nbval_starts_for_the_chapters_hide_the_data(tmp_path):
    from nbval.kernel import RunningKernel

    try:
        _, undo = hide_data_from_nbval_kernels(tmp_path)
    except (OSError, ValueError) as error:
        pytest.skip(f"the authors' curves are neither in HYPERLR_PAPER_CURVES nor cached: {error}")
    try:
        kernel = RunningKernel("python3", cwd=str(CHAPTERS))
    finally:
        undo()
    try:
        reply = kernel.kc.execute_interactive(
            "from hyperlr.lab.data import load_dataset\nload_dataset('digits')",
            timeout=120,
            output_hook=lambda message: None,
        )
    finally:
        kernel.stop()
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "HiddenDataError"
    # The pytest process itself keeps its environment.
    assert "HYPERLR_HIDDEN_DATA_LOG" not in os.environ
