r"""The paper's operator-learning task: learn :math:`G(u)(y) = \int_0^y u(x)\,dx`.

Functions :math:`u` are drawn from a zero-mean Gaussian random field on a fine grid of
:math:`[0, 1]` with the squared-exponential kernel

.. math:: k_\ell(x, x') = \exp\!\Bigl(-\frac{(x - x')^2}{2\ell^2}\Bigr),

the length scale :math:`\ell` drawn per function from :math:`U(\ell_{min}, \ell_{max})`
(the paper: :math:`U(0.1, 0.4)`, 10,000 functions, 1,000 grid points). A model reads :math:`u`
at every 10th grid point (100 *sensors*) and predicts :math:`G(u)` at 100 query points
:math:`y = \mathrm{linspace}(0, 1, 100)`.

Exact sampling without a per-function 1000x1000 Cholesky. A Cholesky of the fine-grid kernel
for each of 10,000 length scales is far too slow, but with :math:`\ell \ge 0.1` the field is so
smooth that a coarse grid of ``coarse_points`` points determines it on the fine grid:

1. sample :math:`u_c \sim \mathcal N(0, K_{cc} + \varepsilon I)` on the coarse grid (a batched
   float64 Cholesky, jitter :math:`\varepsilon` = ``jitter``);
2. condition to the fine grid: :math:`u_f = K_{fc} (K_{cc} + \varepsilon I)^{-1} u_c`, the
   conditional mean.

The covariance of :math:`u_f` is :math:`K_{fc}(K_{cc} + \varepsilon I)^{-1}K_{cf}`, which differs
from the fine-grid kernel :math:`K_{ff}` by the conditional covariance
:math:`K_{ff} - K_{fc}(K_{cc} + \varepsilon I)^{-1}K_{cf}`; :func:`conditioning_error` computes
its largest entry (about :math:`10^{-9}`, at the level of the jitter, for the defaults), so the
fine-grid samples follow the kernel to numerical precision.

Normalisation (the paper's): with :math:`s_+` the mean plus one standard deviation of the
per-function maxima and :math:`s_-` the mean minus one standard deviation of the per-function
minima over all functions, :math:`u \leftarrow 2 (u - s_-) / (s_+ - s_-) - 1`.

The integral uses a cubic Hermite interpolant of the normalised fine-grid :math:`u` whose node
slopes are finite differences (central inside, second-order one-sided at the ends, as
``numpy.gradient(edge_order=2)``); it is integrated exactly (:func:`hermite_integral`), so it is
exact for quadratics and :math:`O(h^4)` accurate for smooth :math:`u`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .splits import TrainValTensors, check_subset_size, data_dir

__all__ = [
    "OperatorData",
    "conditioning_error",
    "gaussian_random_field",
    "hermite_integral",
    "integral_operator",
    "operator_arrays",
    "se_kernel",
]

# Part of every cache file's name: bump it when the generated numbers change, so that files
# written by an older generator are not read back.
_GENERATOR_VERSION = 1
_ARRAY_NAMES = ("sensors", "targets", "sensor_points", "query_points", "length_scales", "scale")

# Functions sampled per batched Cholesky and conditioning step: bounds the memory of the
# n x fine x coarse kernel block (250 x 1000 x 64 float64: 128 MB).
_CHUNK = 250


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_length_scales(length_scale: Sequence[float]) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in length_scale)
    except (TypeError, ValueError):
        raise ValueError(
            f"length_scale must be a pair (low, high) of numbers, got {length_scale!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ValueError(f"length_scale must satisfy 0 < low <= high, got {length_scale!r}")
    return low, high


def se_kernel(x: np.ndarray, x2: np.ndarray, length_scale: np.ndarray) -> np.ndarray:
    r"""The squared-exponential kernel :math:`k_\ell(x, x')` for a batch of length scales.

    Args:
        x: points, shape ``(m,)``.
        x2: points, shape ``(p,)``.
        length_scale: shape ``(n,)``.

    Returns:
        Shape ``(n, m, p)``.
    """
    distance = (x[:, None] - x2[None, :]) ** 2
    return np.exp(-distance[None] / (2.0 * length_scale[:, None, None] ** 2))


def conditioning_error(
    length_scale: float, n_grid: int = 1000, coarse_points: int = 64, jitter: float = 1e-10
) -> float:
    r"""Largest entry of the covariance lost by conditioning from the coarse grid.

    :math:`\max_{ij} |K_{ff} - K_{fc}(K_{cc} + \varepsilon I)^{-1} K_{cf}|_{ij}`: how far the
    covariance of :func:`gaussian_random_field`'s fine-grid samples is from the kernel.
    """
    fine = np.linspace(0.0, 1.0, n_grid)
    coarse = np.linspace(0.0, 1.0, coarse_points)
    scale = np.array([float(length_scale)])
    k_cc = se_kernel(coarse, coarse, scale)[0] + jitter * np.eye(coarse_points)
    k_fc = se_kernel(fine, coarse, scale)[0]
    k_ff = se_kernel(fine, fine, scale)[0]
    factor = np.linalg.cholesky(k_cc)
    half = np.linalg.solve(factor, k_fc.T)  # L^{-1} K_cf
    return float(np.abs(k_ff - half.T @ half).max())


def gaussian_random_field(
    n_functions: int,
    *,
    n_grid: int = 1000,
    length_scale: Sequence[float] = (0.1, 0.4),
    coarse_points: int = 64,
    jitter: float = 1e-10,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw functions from the squared-exponential Gaussian random field on ``[0, 1]``.

    Sampled exactly on ``coarse_points`` points and conditioned to the fine grid (see the
    module's docstring), vectorised over chunks of functions.

    Args:
        n_functions: how many functions.
        n_grid: points of the fine grid ``linspace(0, 1, n_grid)``.
        length_scale: ``(low, high)``; each function's length scale is uniform in it.
        coarse_points: points of the coarse sampling grid; it must resolve the shortest length
            scale (check with :func:`conditioning_error`).
        jitter: added to the coarse kernel's diagonal, so that its Cholesky exists.
        seed: seeds the length scales and the draws.

    Returns:
        ``(grid, u, length_scales)``: the fine grid ``(n_grid,)``, the functions
        ``(n_functions, n_grid)`` and their length scales ``(n_functions,)``, all float64.
    """
    _check_int("n_functions", n_functions, 1)
    _check_int("n_grid", n_grid, 2)
    _check_int("coarse_points", coarse_points, 2)
    low, high = _check_length_scales(length_scale)
    if not (isinstance(jitter, (int, float)) and math.isfinite(jitter) and jitter > 0):
        raise ValueError(f"jitter must be a finite number > 0, got {jitter!r}")
    rng = np.random.default_rng(seed)
    scales = rng.uniform(low, high, n_functions)
    noise = rng.standard_normal((n_functions, coarse_points))
    grid = np.linspace(0.0, 1.0, n_grid)
    coarse = np.linspace(0.0, 1.0, coarse_points)
    u = np.empty((n_functions, n_grid))
    eye = jitter * np.eye(coarse_points)
    for start in range(0, n_functions, _CHUNK):
        chunk = slice(start, start + _CHUNK)
        factor = np.linalg.cholesky(se_kernel(coarse, coarse, scales[chunk]) + eye)
        # u_c = L z, so (K_cc + eps I)^{-1} u_c = L^{-T} L^{-1} L z = L^{-T} z: one solve.
        weights = np.linalg.solve(np.swapaxes(factor, 1, 2), noise[chunk, :, None])
        u[chunk] = (se_kernel(grid, coarse, scales[chunk]) @ weights)[..., 0]
    return grid, u, scales


def hermite_integral(u: np.ndarray, grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    r"""Integrals :math:`\int_0^{y} p(x)\,dx` of the cubic Hermite interpolant ``p`` of ``u``.

    On each interval :math:`[x_k, x_k + h]` of the uniform ``grid`` the interpolant matches the
    values :math:`u_k` and the slopes :math:`m_k` (``numpy.gradient`` with ``edge_order=2``);
    with :math:`t = (x - x_k)/h` its integral from :math:`x_k` is

    .. math::

        h\,[H_{00}(t)\,u_k + H_{10}(t)\,h m_k + H_{01}(t)\,u_{k+1} + H_{11}(t)\,h m_{k+1}],

    :math:`H_{00} = t - t^3 + t^4/2`, :math:`H_{10} = t^2/2 - 2t^3/3 + t^4/4`,
    :math:`H_{01} = t^3 - t^4/2`, :math:`H_{11} = -t^3/3 + t^4/4` (the integrals of the Hermite
    basis), and whole intervals add up to :math:`h(u_k + u_{k+1})/2 + h^2 (m_k - m_{k+1})/12`.

    Args:
        u: values on the grid, shape ``(..., n_grid)``.
        grid: a uniform grid, shape ``(n_grid,)``, starting at 0.
        points: where to evaluate, in ``[grid[0], grid[-1]]``, shape ``(p,)``.

    Returns:
        Shape ``(..., p)``.
    """
    grid = np.asarray(grid, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    h = grid[1] - grid[0]
    if not np.allclose(np.diff(grid), h, rtol=1e-9, atol=0.0):
        raise ValueError("grid must be uniform")
    if points.min() < grid[0] or points.max() > grid[-1] + 1e-12:
        raise ValueError("points must lie within the grid")
    slopes = np.gradient(u, h, axis=-1, edge_order=2)
    whole = 0.5 * h * (u[..., :-1] + u[..., 1:]) + h * h * (slopes[..., :-1] - slopes[..., 1:]) / 12
    cumulative = np.concatenate([np.zeros_like(u[..., :1]), np.cumsum(whole, axis=-1)], axis=-1)
    interval = np.clip(np.floor((points - grid[0]) / h).astype(int), 0, len(grid) - 2)
    t = (points - grid[interval]) / h
    t2, t3, t4 = t * t, t**3, t**4
    h00, h10 = t - t3 + t4 / 2, t2 / 2 - 2 * t3 / 3 + t4 / 4
    h01, h11 = t3 - t4 / 2, -t3 / 3 + t4 / 4
    k, k1 = interval, interval + 1
    partial = h * (
        h00 * u[..., k] + h10 * h * slopes[..., k] + h01 * u[..., k1] + h11 * h * slopes[..., k1]
    )
    return cumulative[..., interval] + partial


def _cache_folder() -> Path:
    return data_dir() / "operator"


@functools.lru_cache(maxsize=4)
def _cached_arrays(settings_json: str) -> dict[str, np.ndarray]:
    """The generated arrays for one setting, from memory, the cache folder, or generated."""
    settings = json.loads(settings_json)
    digest = hashlib.sha256(settings_json.encode()).hexdigest()[:16]
    path = _cache_folder() / f"integral-v{_GENERATOR_VERSION}-{digest}.npz"
    try:
        with np.load(path) as stored:
            return {name: stored[name] for name in _ARRAY_NAMES}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # not cached yet, or unreadable: generate
    arrays = _generate(**settings)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic: written under a temporary name, then renamed over the final one, so that
        # concurrent workers never read a half-written file.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".npz.tmp")
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache only costs the regeneration next time
    return arrays


def _generate(
    n_functions: int,
    n_grid: int,
    sensor_stride: int,
    n_queries: int,
    length_scale: list[float],
    coarse_points: int,
    seed: int,
) -> dict[str, np.ndarray]:
    grid, u, scales = gaussian_random_field(
        n_functions,
        n_grid=n_grid,
        length_scale=length_scale,
        coarse_points=coarse_points,
        seed=seed,
    )
    maxima, minima = u.max(axis=1), u.min(axis=1)
    s_plus = maxima.mean() + maxima.std()
    s_minus = minima.mean() - minima.std()
    u = 2.0 * (u - s_minus) / (s_plus - s_minus) - 1.0
    queries = np.linspace(0.0, 1.0, n_queries)
    return {
        "sensors": u[:, ::sensor_stride].astype(np.float32),
        "targets": hermite_integral(u, grid, queries).astype(np.float32),
        "sensor_points": grid[::sensor_stride],
        "query_points": queries,
        "length_scales": scales,
        "scale": np.array([s_minus, s_plus]),
    }


def operator_arrays(
    *,
    n_functions: int = 10_000,
    n_grid: int = 1000,
    sensor_stride: int = 10,
    n_queries: int = 100,
    length_scale: Sequence[float] = (0.1, 0.4),
    coarse_points: int = 64,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """All functions of the task, generated once per setting and cached.

    Cached in memory and as an ``.npz`` file in ``data_dir()/operator`` (see
    :func:`hyperlr.lab.splits.data_dir`), so other processes (sweep workers, a rerun) load rather
    than regenerate them.

    Returns:
        ``sensors`` (n, n_grid // sensor_stride rounded up) and ``targets`` (n, n_queries),
        float32, normalised; ``sensor_points``, ``query_points``, ``length_scales`` and
        ``scale`` = :math:`(s_-, s_+)`, float64.
    """
    _check_int("n_functions", n_functions, 2)
    _check_int("n_grid", n_grid, 3)
    _check_int("sensor_stride", sensor_stride, 1)
    _check_int("n_queries", n_queries, 2)
    _check_int("coarse_points", coarse_points, 2)
    _check_int("seed", seed, 0)
    if sensor_stride >= n_grid:
        raise ValueError(f"sensor_stride must be < n_grid ({n_grid}), got {sensor_stride!r}")
    low, high = _check_length_scales(length_scale)
    settings = {
        "n_functions": n_functions,
        "n_grid": n_grid,
        "sensor_stride": sensor_stride,
        "n_queries": n_queries,
        "length_scale": [low, high],
        "coarse_points": coarse_points,
        "seed": seed,
    }
    return _cached_arrays(json.dumps(settings, sort_keys=True))


@dataclass(frozen=True, eq=False)
class OperatorData(TrainValTensors):
    """Sensor values ``x`` (n, sensors) and the integral at the query points ``y`` (n, queries).

    The counterpart of :class:`hyperlr.lab.data.ImageData` for the operator task; the query
    points are the same for every function, so the models hold them (``query_points``).
    """

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    sensor_points: tuple[float, ...]
    query_points: tuple[float, ...]
    augment: bool = False

    @property
    def n_sensors(self) -> int:
        """Sensor values per function (the models' input size)."""
        return self.x_train.shape[1]


def integral_operator(
    *,
    n_functions: int = 10_000,
    n_grid: int = 1000,
    sensor_stride: int = 10,
    n_queries: int = 100,
    length_scale: Sequence[float] = (0.1, 0.4),
    coarse_points: int = 64,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> OperatorData:
    """The paper's operator-learning data set: sensors of ``u`` and its integral at queries.

    The defaults are the paper's: 10,000 functions on 1,000 points, 100 sensors, 100 query
    points, a seeded random 80/20 split (8,000 / 2,000); ``train_subset`` / ``val_subset`` then
    keep seeded random subsets of each side, for reduced-scale runs.

    Args:
        n_functions, n_grid, sensor_stride, n_queries, length_scale, coarse_points: the
            generator's sizes (see :func:`operator_arrays`).
        val_fraction: share of the functions held out for validation, in (0, 1).
        seed: seeds the functions, the split and the subsets.
        train_subset, val_subset: keep this many training / validation functions.
    """
    if not (isinstance(val_fraction, float) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    _check_int("n_functions", n_functions, 2)
    n_val = max(1, round(val_fraction * n_functions))
    if n_val >= n_functions:
        raise ValueError(f"val_fraction {val_fraction} leaves no training functions")
    check_subset_size("train_subset", train_subset, n_functions - n_val)
    check_subset_size("val_subset", val_subset, n_val)
    arrays = operator_arrays(
        n_functions=n_functions,
        n_grid=n_grid,
        sensor_stride=sensor_stride,
        n_queries=n_queries,
        length_scale=length_scale,
        coarse_points=coarse_points,
        seed=seed,
    )
    order = np.random.default_rng([seed, 1]).permutation(n_functions)
    val_index = np.sort(order[:n_val][:val_subset])
    train_index = np.sort(order[n_val:][:train_subset])

    def tensor(name: str, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arrays[name][index]))

    low, high = _check_length_scales(length_scale)
    return OperatorData(
        name="integral",
        source=(
            f"Gaussian random field (squared-exponential kernel, length scale U({low}, {high})), "
            f"{n_functions} functions on {n_grid} points, seed {seed}; "
            "integral of a cubic Hermite interpolant"
        ),
        x_train=tensor("sensors", train_index),
        y_train=tensor("targets", train_index),
        x_val=tensor("sensors", val_index),
        y_val=tensor("targets", val_index),
        sensor_points=tuple(arrays["sensor_points"].tolist()),
        query_points=tuple(arrays["query_points"].tolist()),
    )
