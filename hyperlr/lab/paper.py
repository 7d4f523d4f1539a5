"""The learning curves published with the HyperbolicLR paper, and the paper's tables as published.

The authors of *HyperbolicLR: Epoch insensitive learning rate scheduler* (Tae-Geun Kim,
arXiv:2407.15200) published their validation curves as 30 CSV files in the repository
``Axect/HyperbolicLR`` (folder ``paper/learning_curves/data``, MIT License, copyright (c) 2024
Tae-Geun Kim). :func:`load_paper_curves` reads them into one tidy DataFrame. The files are found

1. in the folder named by the environment variable ``HYPERLR_PAPER_CURVES``, if it is set; or
2. in a cache folder, ``$XDG_CACHE_HOME/hyperlr/paper-curves/<commit>`` (``~/.cache`` when
   ``XDG_CACHE_HOME`` is unset), where they are downloaded once, from the pinned commit
   :data:`PAPER_COMMIT`, checked against pinned SHA-256 digests and written atomically.

Nothing is read or downloaded at import time.

Naming of the curve sets (file ``Result_{task}_{stem}-{scheduler}.csv``):

=====================  ==========  ==========  ==========  =====================================
file stem              ``task``    ``model``   ``metric``  curve
=====================  ==========  ==========  ==========  =====================================
``CIFAR10_CNN``        CIFAR10     CNN         loss        validation cross-entropy, SimpleCNN
``CIFAR10_CNN_ACC``    CIFAR10     CNN         accuracy    validation accuracy, same runs
``OSC_LSTM``           OSC         LSTM        loss        validation Huber loss, LSTM seq2seq
``Integral_MLP``       Integral    DeepONet    loss        validation MSE, DeepONet
``Integral_TF``        Integral    TraONet     loss        validation MSE, transformer operator
=====================  ==========  ==========  ==========  =====================================

``model`` uses the paper's names; ``metric`` tells a loss curve from an accuracy curve of the same
runs. Scheduler codes: ``N`` none, ``P`` PolynomialLR, ``C`` CosineAnnealingLR, ``E``
ExponentialLR, ``H`` HyperbolicLR, ``EH`` ExpHyperbolicLR.

The ``published_*`` functions return the numbers printed in the paper (v3), typed in from it, so
that the book and the tests can compare a recomputation against them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pandas as pd

__all__ = [
    "BUDGETS",
    "CURVE_SETS",
    "PAPER_COMMIT",
    "PAPER_CURVES_ENV",
    "SCHEDULERS",
    "SLCD_METHOD_REPRODUCING",
    "CurveSet",
    "PaperCurvesUnavailableError",
    "load_paper_curves",
    "paper_curve",
    "paper_curves_dir",
    "published_final_metrics",
    "published_power_fit_r2",
    "published_slcd",
]

#: Environment variable naming a folder that holds the authors' CSV files.
PAPER_CURVES_ENV = "HYPERLR_PAPER_CURVES"

#: Commit of ``Axect/HyperbolicLR`` the curves are downloaded from.
PAPER_COMMIT = "cefcb8f9e3a6d6e6e9907c97f896b33e92822d55"

_DATA_FOLDER = "paper/learning_curves/data"
_BASE_URL = f"https://raw.githubusercontent.com/Axect/HyperbolicLR/{PAPER_COMMIT}/{_DATA_FOLDER}"

#: Epoch budgets of the paper's runs.
BUDGETS: tuple[int, ...] = (50, 100, 150, 200)

#: Scheduler codes of the published curves, in the paper's order.
SCHEDULERS: tuple[str, ...] = ("N", "P", "C", "E", "H", "EH")


class CurveSet(NamedTuple):
    """How one family of files (one task, model and metric) is named in the tidy table."""

    task: str
    model: str
    metric: str


#: File stem (between ``Result_`` and ``-{scheduler}.csv``) -> names used in the tidy table.
CURVE_SETS: dict[str, CurveSet] = {
    "CIFAR10_CNN": CurveSet("CIFAR10", "CNN", "loss"),
    "CIFAR10_CNN_ACC": CurveSet("CIFAR10", "CNN", "accuracy"),
    "OSC_LSTM": CurveSet("OSC", "LSTM", "loss"),
    "Integral_MLP": CurveSet("Integral", "DeepONet", "loss"),
    "Integral_TF": CurveSet("Integral", "TraONet", "loss"),
}

#: The SLCD definition (see :func:`hyperlr.metrics.slcd`) under which each row of the published
#: SLCD table is reproduced from the curves. This is a finding of the book's re-analysis, not
#: something the paper states: the paper presents a single definition.
SLCD_METHOD_REPRODUCING: dict[str, str] = {
    "TraONet": "log",
    "DeepONet": "log",
    "LSTM": "log",
    "CNN": "linear",
}

# SHA-256 of each file at PAPER_COMMIT (``sha256sum`` format); a download that does not match
# is rejected.
_SHA256SUMS = """
7090b2f1b856cc9f5883458ef225fe4cad7c1fb701c1bf28fa18bebd7185af48  Result_CIFAR10_CNN-C.csv
a1c45b5d202b1c8a932072985a820194e526794000006d545d5f5f486b657903  Result_CIFAR10_CNN-E.csv
f6fc45e974179d91b9a469bb536cdebfa2ac5f038555524aaf18c9fc4189b65a  Result_CIFAR10_CNN-EH.csv
dd10f083b6d8e0f3ecec3802c34fac839ffce965d21b1c658570743c40a7ab05  Result_CIFAR10_CNN-H.csv
216017dd9fa686c63fc126a17ad717ad01d20c7027eb32bee84743f09ce59f61  Result_CIFAR10_CNN-N.csv
fa4356e9f4a49d85c11f02ddf8153158fcc39bb25cde6b074e67bff28a4329cb  Result_CIFAR10_CNN-P.csv
2d66e81c4a3a07b3d6c2bc6c496c93f59abc6d732c59c74ef68ee9061c32d7bb  Result_CIFAR10_CNN_ACC-C.csv
5266fbaa8b1104a40393617bb80bc756c2e064f0c91e226f6bd919e8131653c3  Result_CIFAR10_CNN_ACC-E.csv
226ccaab5322afd366842e822e391d115181133b97328189b14d426d0b934a96  Result_CIFAR10_CNN_ACC-EH.csv
6ce79f454ab7b8b8920d84015e1eac20348c594713b491fd36444fbfee0277e2  Result_CIFAR10_CNN_ACC-H.csv
92bc65e88df01bd4432b8c6604f4e379ac88c5269bcef3e1ba60758e5d702e2d  Result_CIFAR10_CNN_ACC-N.csv
c9dd1b32c7cff335eb20b186fc56c68b527ddb30c009213c03ad09624b635ab3  Result_CIFAR10_CNN_ACC-P.csv
0bec46ebfa01c7af715cddbfb2a7c698656bddfa4a5d179894e52ba4326c9922  Result_Integral_MLP-C.csv
f36e313ad339b772512ded2b7948ea3c5fb77b3cb8cfb0a7f8cd4cf1f217f42a  Result_Integral_MLP-E.csv
a23fe5b559f193ef76d5de109db0758607c59594e1ee8284406ae8036dc376c8  Result_Integral_MLP-EH.csv
cacd6384507725d3bc9d900ff6384d4c9b37b5518e0b1c9675f6a3e2c823126a  Result_Integral_MLP-H.csv
a78fe153078f5e2e9dd444942b8ed4df3ffcaad7453d626498d59fbe37aff483  Result_Integral_MLP-N.csv
e74da35cf3dce691985a8ac3859561a9e540c900e9ada62b7dbc2054d4dd2470  Result_Integral_MLP-P.csv
f4330205f3df03944ea30b6ea40895ad0d250aead2b3a124040bbb14dc537c20  Result_Integral_TF-C.csv
02d6822147fb1c919fabd681cad6eafb69fa2458c540dd45be0a230ab98d2040  Result_Integral_TF-E.csv
c25385eb27fd31520a9a544751e1fca94357307cc15e1fdd6a4b8be29a700bb1  Result_Integral_TF-EH.csv
7931e106f4eea8cd14f6b8879d09fbd1bbdc4d336051046e6b3193a067ee993e  Result_Integral_TF-H.csv
93e43eed0c0ce7492139f02accabedd37e870fa91da9c026b40dc8e3be694a86  Result_Integral_TF-N.csv
54a3de10d0754d8a542ef4f8cf2ea9b29fef983565d16b698846e28ca76a166d  Result_Integral_TF-P.csv
724bfab87bbdd5c112d7d6e3d62db66b63652feb44d94a8894bcfcde2abe62f9  Result_OSC_LSTM-C.csv
c549a12896429f0d0b6af0e6e39b3efa84f60034441c2f3cce659bd11e362cda  Result_OSC_LSTM-E.csv
1cc620e94eb3e66a23127d4ae14de6b30aa21832b4467abc4ff5eb603f5bd42f  Result_OSC_LSTM-EH.csv
d705e7e2aff72d5e008b63d1720750db31cbed3ab9e5fb012da4fa13366e783b  Result_OSC_LSTM-H.csv
8e3c949990493034d369dc9fa2b0901f7d2e87006e73dd25566a1a91f117d020  Result_OSC_LSTM-N.csv
4b18b57d3f7b21e3d319354a3b9e87d79eafdd2b8e7a4ae2d5f316ce1eeadffc  Result_OSC_LSTM-P.csv
"""
_SHA256: dict[str, str] = {
    name: digest for digest, name in (line.split() for line in _SHA256SUMS.strip().splitlines())
}

_COLUMNS = ["task", "model", "metric", "scheduler", "budget", "epoch", "mean", "min", "max"]


class PaperCurvesUnavailableError(FileNotFoundError):
    """The authors' curves are neither in a given folder nor obtainable by download."""


def _file_name(stem: str, scheduler: str) -> str:
    return f"Result_{stem}-{scheduler}.csv"


def _file_names() -> list[str]:
    return [_file_name(stem, code) for stem in CURVE_SETS for code in SCHEDULERS]


# --------------------------------------------------------------------------------------------
# Locating and downloading the files
# --------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "hyperlr" / "paper-curves" / PAPER_COMMIT[:12]


def _fetch(url: str, timeout: float = 30.0) -> bytes:
    """Return the body of ``url`` (the only place this module touches the network)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _download(names: list[str], folder: Path) -> None:
    """Download ``names`` into ``folder``, each verified and written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        url = f"{_BASE_URL}/{name}"
        data = _fetch(url)
        digest = hashlib.sha256(data).hexdigest()
        if digest != _SHA256[name]:
            raise OSError(
                f"{url} has SHA-256 {digest}, not the expected {_SHA256[name]}; "
                "the download was rejected"
            )
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def paper_curves_dir() -> Path:
    """Return the folder holding the authors' CSV files, downloading them once if needed.

    The folder named by ``HYPERLR_PAPER_CURVES`` wins when the variable is set (it must exist).
    Otherwise the files are taken from the cache folder, after downloading those missing from
    ``raw.githubusercontent.com`` at :data:`PAPER_COMMIT`.

    Raises
    ------
    PaperCurvesUnavailableError
        If ``HYPERLR_PAPER_CURVES`` names no folder, or it is unset and the download fails. The
        message names both ways of providing the files.
    """
    given = os.environ.get(PAPER_CURVES_ENV)
    if given:
        folder = Path(given).expanduser()
        if not folder.is_dir():
            raise PaperCurvesUnavailableError(
                f"{PAPER_CURVES_ENV}={given!r} is not a folder. Point it at a folder holding the "
                f"authors' Result_*.csv files (from {_BASE_URL}), or unset it to download them "
                f"once into {_cache_dir()}."
            )
        return folder
    folder = _cache_dir()
    missing = [name for name in _file_names() if not (folder / name).is_file()]
    if missing:
        try:
            _download(missing, folder)
        except (OSError, urllib.error.URLError, TimeoutError) as exc:
            raise PaperCurvesUnavailableError(
                "The HyperbolicLR paper's learning curves are not available: "
                f"{PAPER_CURVES_ENV} is not set and downloading {len(missing)} file(s) from "
                f"{_BASE_URL} into {folder} failed ({exc}). Either set {PAPER_CURVES_ENV} to a "
                "folder holding the Result_*.csv files of that folder, or allow the download "
                "(network access to raw.githubusercontent.com)."
            ) from exc
    return folder


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _read_one(path: Path, curve_set: CurveSet, scheduler: str) -> pd.DataFrame:
    raw = pd.read_csv(path)
    pieces = []
    for budget in BUDGETS:
        base = f"{scheduler}{budget}_val_loss"
        columns = {base: "mean", f"{base}_min": "min", f"{base}_max": "max"}
        absent = [c for c in ["epoch", *columns] if c not in raw.columns]
        if absent:
            raise ValueError(f"{path} is not one of the authors' files: no column(s) {absent}")
        piece = raw[["epoch", *columns]].rename(columns=columns).dropna(subset=["mean"])
        expected = list(range(1, budget + 1))
        if piece["epoch"].tolist() != expected or piece[["min", "max"]].isna().any(axis=None):
            raise ValueError(
                f"{path}: the {budget}-epoch curve should have values at epochs 1..{budget} "
                "and nowhere else"
            )
        pieces.append(piece.assign(budget=budget))
    frame = pd.concat(pieces, ignore_index=True)
    frame = frame.assign(
        task=curve_set.task,
        model=curve_set.model,
        metric=curve_set.metric,
        scheduler=scheduler,
    )
    return frame


def load_paper_curves(directory: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Read the authors' validation curves into one tidy DataFrame.

    Parameters
    ----------
    directory
        Folder holding the 30 ``Result_*.csv`` files; by default :func:`paper_curves_dir`
        (``HYPERLR_PAPER_CURVES``, else the download cache).

    Returns
    -------
    pandas.DataFrame
        One row per (task, model, metric, scheduler, budget, epoch), with the seed ``mean``,
        ``min`` and ``max`` (5 seeds) of the validation loss (``metric == "loss"``) or accuracy
        (``metric == "accuracy"``, a fraction in [0, 1]). ``budget`` and ``epoch`` are integers;
        epochs run from 1 to the budget. See the module docstring for the naming.

    Raises
    ------
    FileNotFoundError
        If a file is missing from ``directory``.
    ValueError
        If a file does not have the layout of the authors' files.
    """
    folder = paper_curves_dir() if directory is None else Path(directory)
    missing = [name for name in _file_names() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {len(missing)} of the authors' files, e.g. {missing[0]}"
        )
    frames = [
        _read_one(folder / _file_name(stem, code), curve_set, code)
        for stem, curve_set in CURVE_SETS.items()
        for code in SCHEDULERS
    ]
    frame = pd.concat(frames, ignore_index=True)[_COLUMNS]
    return frame.astype({"budget": "int64", "epoch": "int64"})


def paper_curve(
    curves: pd.DataFrame,
    model: str,
    scheduler: str,
    budget: int,
    metric: str = "loss",
    statistic: str = "mean",
) -> pd.Series:
    """One curve of :func:`load_paper_curves`'s table, indexed by epoch.

    Parameters
    ----------
    curves
        The table returned by :func:`load_paper_curves`.
    model, scheduler, budget, metric
        Which curve, e.g. ``("CNN", "EH", 100, "accuracy")``.
    statistic
        ``"mean"``, ``"min"`` or ``"max"`` over the seeds.
    """
    if statistic not in ("mean", "min", "max"):
        raise ValueError(f"statistic must be 'mean', 'min' or 'max'; got {statistic!r}")
    selected = curves[
        (curves["model"] == model)
        & (curves["scheduler"] == scheduler)
        & (curves["budget"] == budget)
        & (curves["metric"] == metric)
    ]
    if selected.empty:
        raise ValueError(
            f"no curve for model={model!r}, scheduler={scheduler!r}, budget={budget!r}, "
            f"metric={metric!r}"
        )
    series = selected.set_index("epoch")[statistic].sort_index()
    series.name = f"{model} {scheduler}{budget} {metric} ({statistic})"
    return series


# --------------------------------------------------------------------------------------------
# The paper's tables, as published
# --------------------------------------------------------------------------------------------

_SLCD_PAIRS: tuple[tuple[int, int], ...] = (
    (50, 100),
    (50, 150),
    (50, 200),
    (100, 150),
    (100, 200),
    (150, 200),
)

# As published (arXiv:2407.15200 v3): SLCD per (model, metric) and scheduler, pairs in the order
# of _SLCD_PAIRS.
_PUBLISHED_SLCD: dict[tuple[str, str], dict[str, tuple[float, ...]]] = {
    ("TraONet", "loss"): {
        "P": (1.07e-1, 1.39e-1, 1.42e-1, 1.49e-1, 1.95e-1, 1.72e-1),
        "C": (1.25e-1, 2.11e-1, 2.10e-1, 2.58e-1, 3.41e-1, 2.42e-1),
        "H": (8.47e-2, 7.90e-2, 9.58e-2, 1.29e-1, 1.66e-1, 1.50e-1),
        "EH": (1.89e-2, 2.29e-2, 4.28e-2, 5.50e-2, 6.69e-2, 6.12e-2),
    },
    ("DeepONet", "loss"): {
        "P": (5.59e-1, 4.12e-1, 6.36e-1, 2.42e-1, 4.39e-1, 2.92e-1),
        "C": (5.88e-1, 5.20e-1, 5.58e-1, 6.09e-1, 7.56e-1, 7.24e-1),
        "H": (3.35e-1, 4.85e-1, 5.24e-1, 5.25e-1, 5.26e-1, 3.00e-1),
        "EH": (5.08e-2, 5.51e-2, 4.92e-2, 4.34e-2, 6.85e-2, 4.58e-2),
    },
    ("LSTM", "loss"): {
        "P": (6.03e-1, 6.08e-1, 5.98e-1, 5.45e-1, 5.40e-1, 4.24e-1),
        "C": (6.15e-1, 6.72e-1, 6.94e-1, 5.44e-1, 6.14e-1, 5.39e-1),
        "H": (2.83e-1, 4.45e-1, 3.60e-1, 3.00e-1, 2.81e-1, 3.19e-1),
        "EH": (2.16e-1, 2.77e-1, 3.84e-1, 2.03e-1, 3.26e-1, 1.17e-1),
    },
    ("CNN", "accuracy"): {
        "P": (9.39e-4, 1.27e-3, 9.94e-4, 1.05e-3, 1.14e-3, 8.47e-4),
        "C": (2.22e-3, 3.14e-3, 3.63e-3, 1.72e-3, 3.28e-3, 2.06e-3),
        "H": (1.31e-3, 1.17e-3, 1.13e-3, 5.03e-4, 6.91e-4, 6.08e-4),
        "EH": (6.88e-4, 6.37e-4, 8.53e-4, 6.48e-4, 1.02e-3, 6.46e-4),
    },
}

# As published: final validation accuracy of the CNN (seed mean) at budgets 50, 100, 150, 200.
_PUBLISHED_FINAL_CNN_ACCURACY: dict[str, tuple[float, ...]] = {
    "P": (0.8604, 0.8734, 0.8767, 0.8797),
    "C": (0.8615, 0.8720, 0.8764, 0.8770),
    "H": (0.8588, 0.8687, 0.8737, 0.8794),
    "EH": (0.8602, 0.8686, 0.8736, 0.8766),
}


def published_slcd() -> pd.DataFrame:
    """The paper's SLCD table, as published (3 significant figures).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``metric``, ``scheduler``, ``budget_short``, ``budget_long`` and
        ``published``; 96 rows (4 models x 4 schedulers x 6 budget pairs), in the paper's order.
        Schedulers N and E are absent: their curves do not depend on the budget.
    """
    rows = [
        (model, metric, scheduler, short, long, value)
        for (model, metric), by_scheduler in _PUBLISHED_SLCD.items()
        for scheduler, values in by_scheduler.items()
        for (short, long), value in zip(_SLCD_PAIRS, values, strict=True)
    ]
    columns = ["model", "metric", "scheduler", "budget_short", "budget_long", "published"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["source"] = "as published: Kim, arXiv:2407.15200, SLCD table"
    return frame


def published_final_metrics() -> pd.DataFrame:
    """Final validation metrics as published (seed mean, 4 decimals): the CNN's accuracy.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``metric``, ``scheduler``, ``budget`` and ``published``.
    """
    rows = [
        ("CNN", "accuracy", scheduler, budget, value)
        for scheduler, values in _PUBLISHED_FINAL_CNN_ACCURACY.items()
        for budget, value in zip(BUDGETS, values, strict=True)
    ]
    frame = pd.DataFrame(rows, columns=["model", "metric", "scheduler", "budget", "published"])
    frame.attrs["source"] = "as published: Kim, arXiv:2407.15200, final-metric tables"
    return frame


def published_power_fit_r2() -> pd.DataFrame:
    """The highest R² of the power-law fits, as published (4 decimals), with its scheduler.

    The fit is of the final validation metric on the budget (:func:`hyperlr.metrics.power_fit`).

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``metric``, ``scheduler`` and ``published``.
    """
    frame = pd.DataFrame(
        [("TraONet", "loss", "EH", 0.9983), ("CNN", "accuracy", "EH", 0.9990)],
        columns=["model", "metric", "scheduler", "published"],
    )
    frame.attrs["source"] = "as published: Kim, arXiv:2407.15200, power-regression tables"
    return frame
