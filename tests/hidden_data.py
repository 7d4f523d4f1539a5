"""A machine without data sets or network, for the chapters' kernels (used by nbval and tests).

:func:`hidden_environment` gives the environment of a Python process on such a machine: a
``sitecustomize`` hook (:data:`HOOK`) makes every way of reading data fail: the data loaders of
:mod:`hyperlr.lab.data` (``load_dataset``, each entry of ``DATASETS``, the Fashion-MNIST and
CIFAR-10 readers), the generators of the operator task and the sunspots, torchvision's downloads,
and every network connection that is not to this machine. ``HYPERLR_DATA_DIR``, the cache folder
(``XDG_CACHE_HOME``) and Debian's Fashion-MNIST folder point at empty folders. Every attempt is
also written to a log, so a chapter that catches the error (``except Exception``) is still caught.

``chapters/conftest.py`` starts every kernel nbval runs a chapter in with this environment, so
the notebook tests are also the test that the book builds from the committed results alone.

One data set stays allowed: the oscillator of chapter 6, whose forecast figure recomputes it
from the equation of motion (10,001 Newmark-beta steps of the package's own code, no file and no
network) to draw the stored forecasts against the truth. Chapter 8's illustration of the
operator task's sampler (four functions from ``gaussian_random_field``) is a figure of the
method, not its data set (``operator_arrays`` / ``integral_operator``, which are refused).

The authors' published curves are the one input the book reads (chapters 4, 8 and 9): they come
from ``HYPERLR_PAPER_CURVES`` or the cache of :func:`hyperlr.lab.paper.paper_curves_dir`,
resolved before the network is cut.
"""

from __future__ import annotations

import functools
import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Data sets whose loader may still run (see the module's docstring).
ALLOWED = ("oscillator",)

HOOK = '''
"""Test hook (tests/hidden_data.py): every data loader and the network fail."""
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
    raise HiddenDataError(f"the book must not read {what} (tests/hidden_data.py)")


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


def hidden_environment(base: Path) -> dict[str, str]:
    """``os.environ`` as on a machine without data sets or network, with its files in ``base``.

    The hook's log of refused attempts is ``HYPERLR_HIDDEN_DATA_LOG``; ``HYPERLR_DATA_DIR`` must
    stay empty. Raises what :func:`hyperlr.lab.paper.paper_curves_dir` raises when the authors'
    curves are neither in ``HYPERLR_PAPER_CURVES`` nor cached (the one download the book may
    make, done here, before the network is cut).
    """
    from hyperlr.lab.paper import paper_curves_dir

    curves = paper_curves_dir()
    hook = base / "hook"
    for folder in (hook, base / "data", base / "cache", base / "matplotlib"):
        folder.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(textwrap.dedent(HOOK))
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), str(ROOT)]),
        "HYPERLR_DATA_DIR": str(base / "data"),
        "XDG_CACHE_HOME": str(base / "cache"),
        # Matplotlib's font cache, built once rather than in every kernel.
        "MPLCONFIGDIR": str(base / "matplotlib"),
        "HYPERLR_PAPER_CURVES": str(curves),
        "HYPERLR_HIDDEN_DATA_LOG": str(base / "attempts.log"),
        "HYPERLR_HIDDEN_DATA_ALLOW": ",".join(ALLOWED),
        "MPLBACKEND": "agg",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def attempts(env: dict[str, str]) -> str:
    """What the hook refused so far in processes of ``env``, a line per attempt."""
    log = Path(env["HYPERLR_HIDDEN_DATA_LOG"])
    return log.read_text() if log.exists() else ""


def hide_data_from_nbval_kernels(base: Path) -> tuple[dict[str, str], Callable[[], None]]:
    """Start every kernel nbval starts from now on with :func:`hidden_environment`.

    Only nbval's kernels (the chapters' notebook tests) get the hook; other kernels and
    subprocesses of the same pytest process (the papermill runs of tiny studies, which read the
    digits) keep the ordinary environment. Returns the environment and a function that undoes
    the change.
    """
    from nbval.kernel import RunningKernel

    env = hidden_environment(base)
    original = RunningKernel.__init__

    @functools.wraps(original)
    def start_hidden(self: RunningKernel, *args: Any, **kwargs: Any) -> None:
        # jupyter_client copies os.environ when it launches the kernel, so the kernel keeps the
        # hidden environment after it is restored here.
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            original(self, *args, **kwargs)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    RunningKernel.__init__ = start_hidden  # type: ignore[method-assign]

    def undo() -> None:
        RunningKernel.__init__ = original  # type: ignore[method-assign]

    return env, undo
