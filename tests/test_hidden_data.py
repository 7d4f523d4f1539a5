"""The experiment chapters build from the committed results alone: no data set, no network.

Each chapter runs in a fresh kernel with its default parameters (as the book build runs it),
inside a subprocess whose ``sitecustomize`` hook (:data:`HOOK`) makes every way of reading data
fail: the data loaders of :mod:`hyperlr.lab.data` (``load_dataset``, each entry of
``DATASETS``, the Fashion-MNIST and CIFAR-10 readers), the generators of the operator task and
the sunspots, torchvision's downloads, and every network connection that is not to this
machine. ``HYPERLR_DATA_DIR``, the cache folder (``XDG_CACHE_HOME``) and Debian's Fashion-MNIST
folder point at empty folders. Every attempt is also written to a log, so a chapter that catches
the error (``except Exception``) still fails the test.

One data set stays allowed: the oscillator of chapter 6, whose forecast figure recomputes it
from the equation of motion (10,001 Newmark-beta steps of the package's own code, no file and no
network) to draw the stored forecasts against the truth. Chapter 8's illustration of the
operator task's sampler (four functions from ``gaussian_random_field``) is a figure of the
method, not its data set (``operator_arrays`` / ``integral_operator``, which are refused).

The authors' published curves are the one input the book reads (chapters 4, 8 and 9): they come
from ``HYPERLR_PAPER_CURVES`` or the cache of :func:`hyperlr.lab.paper.paper_curves_dir`,
resolved here before the network is cut.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
#: Every chapter from the experiments on (a new chapter is covered without editing this list),
#: but the theory chapter, which trains nothing and computes from models alone (its one read of
#: the results, theory_summary.book_tasks, has its own test of reading no data).
EXPERIMENTS = sorted(
    p.stem
    for p in CHAPTERS.glob("*.ipynb")
    if int(p.stem[:2]) >= 5 and "what_theory_predicts" not in p.stem
)
#: Data sets whose loader may still run (see the module's docstring).
ALLOWED = ("oscillator",)

HOOK = '''
"""Test hook (tests/test_hidden_data.py): every data loader and the network fail."""
import functools
import ipaddress
import os
import socket
from pathlib import Path

_LOG = os.environ["HYPERLR_HIDDEN_DATA_LOG"]
_ALLOWED = set(filter(None, os.environ.get("HYPERLR_HIDDEN_DATA_ALLOW", "").split(",")))


class HiddenDataError(RuntimeError):
    """Raised where the book tried to read a data set or reach the network."""


def _refuse(what):
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {what}\\n")
    raise HiddenDataError(f"the book must not read {what} (tests/test_hidden_data.py)")


def _refusing(what, original=None):
    def refused(*args, **kwargs):
        _refuse(what)
    # Keeps the signature, which the settings' checks read (hyperlr.lab.sizes).
    return refused if original is None else functools.wraps(original)(refused)


def _local(address):
    if not isinstance(address, tuple):
        return True  # a Unix socket
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _guarded(real):
    def connect(self, address):
        if not _local(address):
            _refuse(f"the network ({address!r})")
        return real(self, address)
    return connect


socket.socket.connect = _guarded(_connect)
socket.socket.connect_ex = _guarded(_connect_ex)

import torchvision.datasets  # noqa: E402
import torchvision.datasets.utils  # noqa: E402

for _name in ("download_url", "download_and_extract_archive", "download_file_from_google_drive"):
    setattr(torchvision.datasets.utils, _name, _refusing(f"torchvision's {_name}"))
for _name in ("MNIST", "FashionMNIST", "CIFAR10", "CIFAR100"):
    _cls = getattr(torchvision.datasets, _name)
    _cls.download = _refusing(f"torchvision's {_name} download")
    _cls.__init__ = _refusing(f"torchvision's {_name}")

from hyperlr.lab import data, operator, series  # noqa: E402

_empty = Path(os.environ["HYPERLR_DATA_DIR"])
data.DEBIAN_FASHION_MNIST_DIR = _empty / "debian-fashion-mnist"
for _name in ("read_idx", "locate_fashion_mnist", "fashion_mnist", "cifar10", "digits",
              "_torchvision_download"):
    setattr(data, _name, _refusing(f"hyperlr.lab.data.{_name}", getattr(data, _name)))
for _name in ("sunspots", "sunspots_windows", "oscillator_windows"):
    if _name.split("_")[0] not in _ALLOWED:
        setattr(series, _name, _refusing(f"hyperlr.lab.series.{_name}", getattr(series, _name)))
for _name in ("operator_arrays", "integral_operator"):
    setattr(operator, _name, _refusing(f"hyperlr.lab.operator.{_name}", getattr(operator, _name)))
for _name in list(data.DATASETS):
    if _name not in _ALLOWED:
        data.DATASETS[_name] = _refusing(f"the data set {_name!r}", data.DATASETS[_name])
_load_dataset = data.load_dataset


def load_dataset(name, *args, **kwargs):
    if name not in _ALLOWED:
        _refuse(f"the data set {name!r} (load_dataset)")
    return _load_dataset(name, *args, **kwargs)


data.load_dataset = load_dataset
'''

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
    from hyperlr.lab.paper import paper_curves_dir

    try:
        curves = paper_curves_dir()  # the one download the book may make, done before
    except (OSError, ValueError) as error:
        pytest.skip(f"the authors' curves are neither in HYPERLR_PAPER_CURVES nor cached: {error}")
    base = tmp_path_factory.mktemp("hidden")
    hook = base / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(HOOK))
    (base / "data").mkdir()
    (base / "cache").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)]),
        "HYPERLR_DATA_DIR": str(base / "data"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "HYPERLR_PAPER_CURVES": str(curves),
        "HYPERLR_HIDDEN_DATA_LOG": str(base / "attempts.log"),
        "HYPERLR_HIDDEN_DATA_ALLOW": ",".join(ALLOWED),
        "MPLBACKEND": "agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    return env


def _execute(notebook: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(notebook), str(CHAPTERS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )


def _attempts(env: dict[str, str]) -> str:
    log = Path(env["HYPERLR_HIDDEN_DATA_LOG"])
    return log.read_text() if log.exists() else ""


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
    assert _attempts(hidden).count("\n") >= 7
    Path(hidden["HYPERLR_HIDDEN_DATA_LOG"]).unlink()


@pytest.mark.parametrize("chapter", EXPERIMENTS)
def test_a_chapter_builds_without_data_sets_or_network(hidden, chapter):
    log = Path(hidden["HYPERLR_HIDDEN_DATA_LOG"])
    log.unlink(missing_ok=True)
    done = _execute(CHAPTERS / f"{chapter}.ipynb", hidden)
    assert done.returncode == 0, f"{chapter} failed without data:\n{done.stderr[-4000:]}"
    assert _attempts(hidden) == "", f"{chapter} tried to read data:\n{_attempts(hidden)}"
    assert not any(Path(hidden["HYPERLR_DATA_DIR"]).iterdir()), "something was written there"
