r"""Metrics of the HyperbolicLR paper: SLCD, Diff and the power-law fit.

All three compare training runs of one scheduler across epoch budgets
:math:`N \in \{50, 100, 150, 200\}` (Kim, arXiv:2407.15200, and the book's chapter on
reproducing the paper's tables):

* :func:`slcd`, the *smoothed learning-curve difference* between the curves of two budgets, in
  the two definitions the paper's table mixes: ``"linear"`` (the authors' current analysis code)
  and ``"log"`` (the earlier version behind most of the published rows);
* :func:`diff`, the mean and sample standard deviation of the change of the final metric from
  one budget to the next;
* :func:`power_fit`, an ordinary least-squares fit of :math:`\ln y` on :math:`\ln N`.

:func:`savgol9` is the 9-point quadratic Savitzky-Golay filter both SLCD definitions smooth with.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "LOG_SLCD_START",
    "SAVGOL9_WEIGHTS",
    "DiffResult",
    "PowerFit",
    "diff",
    "power_fit",
    "regularized_incomplete_beta",
    "savgol9",
    "slcd",
    "student_t_two_sided_p",
]

#: Weights of the 9-point quadratic (equivalently cubic) Savitzky-Golay smoothing filter,
#: :math:`(-21, 14, 39, 54, 59, 54, 39, 14, -21) / 231`.
SAVGOL9_WEIGHTS: NDArray[np.float64] = np.array([-21, 14, 39, 54, 59, 54, 39, 14, -21]) / 231.0

#: First epoch of the integral in the ``"log"`` SLCD definition.
LOG_SLCD_START: int = 10

_SLCD_METHODS = ("linear", "log")
_DIFF_KINDS = ("loss", "accuracy")

# Gauss-Legendre rule on [0, 1] used between the sign changes of the log-ratio spline, where the
# integrand is analytic: 16 nodes integrate it to rounding error.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_GL_NODES = (_GL_NODES + 1.0) / 2.0
_GL_WEIGHTS = _GL_WEIGHTS / 2.0


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_1d_float(values: ArrayLike, name: str, *, min_size: int = 1) -> NDArray[np.float64]:
    """Return ``values`` as a finite 1-D float array, or raise an error naming ``name``."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a sequence of real numbers; got {values!r}") from exc
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got an array of shape {array.shape}")
    if array.size < min_size:
        raise ValueError(
            f"{name} must have at least {min_size} value{'s' if min_size > 1 else ''}; "
            f"got {array.size}"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        k = bad[0]
        raise ValueError(
            f"{name} must be finite; {name}[{k}] = {float(array[k])!r} "
            f"({bad.size} non-finite value{'s' if bad.size > 1 else ''} in all)"
        )
    return array


def _require_positive(array: NDArray[np.float64], name: str, why: str) -> None:
    bad = np.flatnonzero(array <= 0)
    if bad.size:
        k = bad[0]
        raise ValueError(f"{name} must be positive {why}; {name}[{k}] = {float(array[k])!r}")


# --------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------


def savgol9(values: ArrayLike) -> NDArray[np.float64]:
    r"""Smooth a curve with the 9-point quadratic Savitzky-Golay filter, leaving its ends raw.

    .. math::

        S(k) = \frac{1}{231}\bigl[59\,y_k + 54\,(y_{k-1} + y_{k+1}) + 39\,(y_{k-2} + y_{k+2})
               + 14\,(y_{k-3} + y_{k+3}) - 21\,(y_{k-4} + y_{k+4})\bigr]

    for :math:`4 \le k \le M - 5` (0-based, :math:`M` points), and :math:`S(k) = y_k` for the
    first and last four points, as in the paper's analysis code. The filter reproduces any
    quadratic (indeed cubic) exactly in the interior. A curve of fewer than 9 points is returned
    unchanged.

    Parameters
    ----------
    values
        The curve, one value per epoch (1-D, finite).

    Returns
    -------
    numpy.ndarray
        A new float array of the same length.
    """
    y = _as_1d_float(values, "values")
    smoothed = y.copy()
    if y.size >= SAVGOL9_WEIGHTS.size:
        # The weights are symmetric, so correlation and convolution agree.
        smoothed[4:-4] = np.convolve(y, SAVGOL9_WEIGHTS, mode="valid")
    return smoothed


def _hermite_slopes(y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Node slopes on a unit grid: central differences, one-sided second order at the ends."""
    slopes = np.empty_like(y)
    slopes[1:-1] = (y[2:] - y[:-2]) / 2.0
    slopes[0] = (-3.0 * y[0] + 4.0 * y[1] - y[2]) / 2.0
    slopes[-1] = (3.0 * y[-1] - 4.0 * y[-2] + y[-3]) / 2.0
    return slopes


# --------------------------------------------------------------------------------------------
# SLCD
# --------------------------------------------------------------------------------------------


def slcd(
    curve_a: ArrayLike,
    curve_b: ArrayLike,
    method: Literal["linear", "log"] = "linear",
    *,
    start: int = LOG_SLCD_START,
) -> float:
    r"""Smoothed learning-curve difference between the curves of two epoch budgets.

    Let :math:`L_i` be the shorter curve (:math:`N_i` epochs) and :math:`L_j` the longer one
    (:math:`N_j \ge N_i` epochs), epochs counted from 1. The arguments may come in either order;
    the average is always over the shorter curve's length :math:`N_i`.

    ``method="linear"`` (the authors' current analysis code): smooth each *full* curve with
    :func:`savgol9`, giving :math:`S_i, S_j`, and average the relative difference over the
    shorter curve's epochs,

    .. math::

        \mathrm{SLCD} = \frac{1}{N_i} \sum_{k=1}^{N_i}
                        \frac{\lvert S_i(k) - S_j(k) \rvert}{S_i(k) + S_j(k)} .

    It lies in :math:`[0, 1)` for positive smoothed curves, but the filter's negative weights can
    push a spiky curve's smoothed values below zero, and then terms, and the result, can be
    negative or exceed 1.

    ``method="log"`` (the earlier version): smooth :math:`\ln L` with :func:`savgol9`, interpolate
    each full smoothed curve :math:`c_i, c_j` over its epochs :math:`1, \dots, M` with a cubic
    Hermite spline whose node slopes are central differences :math:`(c_{k+1} - c_{k-1})/2`
    (one-sided second-order differences at the two ends), and integrate

    .. math::

        \mathrm{SLCD} = \frac{1}{N_i} \int_{10}^{N_i}
                        \frac{\lvert e^{c_i(t)} - e^{c_j(t)} \rvert}{e^{c_i(t)} + e^{c_j(t)}}\,dt
                      = \frac{1}{N_i} \int_{10}^{N_i}
                        \Bigl\lvert \tanh \frac{c_i(t) - c_j(t)}{2} \Bigr\rvert\,dt ,

    which lies in :math:`[0, 1)` for any positive curves. The integral is computed on each unit
    interval between the sign changes of the cubic :math:`c_i - c_j` with 16-point
    Gauss-Legendre quadrature, i.e. to rounding error (the authors used adaptive Gauss-Kronrod
    quadrature).

    Parameters
    ----------
    curve_a, curve_b
        The two learning curves, one value per epoch starting at epoch 1 (1-D, finite; numpy
        arrays, lists or pandas Series, whose index is ignored). ``"log"`` needs positive values
        and at least ``LOG_SLCD_START + 1 = 11`` epochs in each curve.
    method
        ``"linear"`` or ``"log"``.
    start
        ``"log"`` only: the epoch the integral starts at, the paper's 10 by default; a study
        that divides every duration by ten starts it at epoch 1 to describe the same part of
        the curves. The curves then need ``start + 1`` epochs, and at least three.

    Returns
    -------
    float
        The SLCD; symmetric in its two arguments.

    Raises
    ------
    ValueError
        For an unknown ``method``, an empty, multi-dimensional or non-finite curve, a curve too
        short for ``"log"``, a non-positive value under ``"log"``, or (``"linear"``) smoothed
        curves whose sum vanishes at some epoch.
    TypeError
        For a curve that cannot be read as real numbers.

    Notes
    -----
    From the authors' published curves, ``"linear"`` reproduces the CNN (accuracy) row of the
    paper's SLCD table and ``"log"`` its TraONet, DeepONet and LSTM rows, every value to the
    three printed significant figures (see :data:`hyperlr.lab.paper.SLCD_METHOD_REPRODUCING`).

    Examples
    --------
    Two runs whose losses differ by a constant factor 2 give :math:`(2 - 1)/(2 + 1)` in linear
    space (when the smoothing leaves the curves unchanged, as for this quadratic) and the
    fraction :math:`(N_i - 10)/N_i` of it in log space:

    >>> import numpy as np
    >>> loss = 1.0 + ((120 - np.arange(1, 101)) / 100) ** 2
    >>> round(slcd(2 * loss[:50], loss), 12)
    0.333333333333
    >>> round(slcd(2 * np.exp(-loss[:50]), np.exp(-loss), method="log"), 12)
    0.266666666667
    """
    if method not in _SLCD_METHODS:
        raise ValueError(f"method must be one of {_SLCD_METHODS}; got {method!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 1:
        raise ValueError(f"start must be an integer >= 1, got {start!r}")
    # The spline's end slopes need three points, the integral start + 1.
    min_size = max(start + 1, 3) if method == "log" else 1
    a = _as_1d_float(curve_a, "curve_a", min_size=min_size)
    b = _as_1d_float(curve_b, "curve_b", min_size=min_size)
    if method == "log":
        _require_positive(a, "curve_a", 'for method="log"')
        _require_positive(b, "curve_b", 'for method="log"')
        return _slcd_log(a, b, int(start))
    return _slcd_linear(a, b)


def _slcd_linear(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    n = min(a.size, b.size)
    s_a = savgol9(a)[:n]
    s_b = savgol9(b)[:n]
    total = s_a + s_b
    zero = np.flatnonzero(total == 0)
    if zero.size:
        raise ValueError(
            "the smoothed curves sum to zero at epoch "
            f"{zero[0] + 1}; the linear SLCD is undefined there"
        )
    return float(np.mean(np.abs(s_a - s_b) / total))


def _slcd_log(a: NDArray[np.float64], b: NDArray[np.float64], start: int) -> float:
    n = min(a.size, b.size)
    c_a = savgol9(np.log(a))
    c_b = savgol9(np.log(b))
    # Both splines have their nodes on the integer epochs, so on [1, n] their difference is itself
    # a cubic Hermite spline with node values and slopes equal to the differences of theirs.
    # Slopes come from each full curve: the longer curve's slope at epoch n looks past it.
    value = c_a[:n] - c_b[:n]
    slope = _hermite_slopes(c_a)[:n] - _hermite_slopes(c_b)[:n]
    # Power-basis coefficients, in s in [0, 1], of the cubic on each epoch interval
    # [k, k + 1] for k = start, ..., n - 1.
    lo = slice(start - 1, n - 1)
    hi = slice(start, n)
    p0, p1, m0, m1 = value[lo], value[hi], slope[lo], slope[hi]
    coeffs = np.stack(
        [p0, m0, 3.0 * (p1 - p0) - 2.0 * m0 - m1, 2.0 * (p0 - p1) + m0 + m1],
        axis=1,
    )
    # Split every interval at the real roots of its cubic, where |tanh(.)| has a kink.
    starts, ends, rows = [], [], []
    for row, c in enumerate(coeffs):
        roots = np.polynomial.polynomial.polyroots(c) if np.any(c[1:]) else np.empty(0)
        real = roots.real[np.abs(roots.imag) <= 1e-12 * np.maximum(1.0, np.abs(roots.real))]
        cuts = np.sort(real[(real > 0.0) & (real < 1.0)])
        edges = np.concatenate(([0.0], cuts, [1.0]))
        starts.append(edges[:-1])
        ends.append(edges[1:])
        rows.append(np.full(edges.size - 1, row))
    left, right, row_of = np.concatenate(starts), np.concatenate(ends), np.concatenate(rows)
    width = right - left
    s = left[:, None] + width[:, None] * _GL_NODES[None, :]
    c = coeffs[row_of]
    cubic = c[:, [0]] + s * (c[:, [1]] + s * (c[:, [2]] + s * c[:, [3]]))
    integral = np.sum(width[:, None] * _GL_WEIGHTS[None, :] * np.abs(np.tanh(cubic / 2.0)))
    return float(integral / n)


# --------------------------------------------------------------------------------------------
# Diff
# --------------------------------------------------------------------------------------------


class DiffResult(NamedTuple):
    """Mean and sample standard deviation of the budget-to-budget changes (see :func:`diff`)."""

    mean: float
    std: float
    differences: NDArray[np.float64]


def diff(values: ArrayLike, kind: Literal["loss", "accuracy"] = "loss") -> DiffResult:
    r"""Change of the final metric from one epoch budget to the next, as in the paper's tables.

    For final values :math:`y_1, \dots, y_K` at increasing budgets :math:`N_1 < \dots < N_K`:

    .. math::

        d_k = \begin{cases}
            100\,\dfrac{y_k - y_{k+1}}{y_k} & \text{kind = "loss" (percent improvement)},\\[1ex]
            y_{k+1} - y_k & \text{kind = "accuracy"},
        \end{cases}
        \qquad k = 1, \dots, K - 1,

    reported as the mean :math:`\bar d` and the sample standard deviation
    :math:`s = \sqrt{\sum_k (d_k - \bar d)^2 / (K - 2)}`. Positive values mean that a longer
    budget did better.

    Parameters
    ----------
    values
        The final metric at each budget, in order of increasing budget (1-D, finite, at least 3
        values so that the two or more differences have a sample standard deviation; positive for
        ``kind="loss"``).
    kind
        ``"loss"`` or ``"accuracy"``.

    Returns
    -------
    DiffResult
        ``(mean, std, differences)``.
    """
    if kind not in _DIFF_KINDS:
        raise ValueError(f"kind must be one of {_DIFF_KINDS}; got {kind!r}")
    y = _as_1d_float(values, "values", min_size=3)
    if kind == "loss":
        _require_positive(y, "values", 'for kind="loss" (relative changes divide by them)')
        d = 100.0 * (y[:-1] - y[1:]) / y[:-1]
    else:
        d = y[1:] - y[:-1]
    return DiffResult(mean=float(np.mean(d)), std=float(np.std(d, ddof=1)), differences=d)


# --------------------------------------------------------------------------------------------
# Power-law fit
# --------------------------------------------------------------------------------------------


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    r"""The continued fraction of :math:`I_x(a, b)`, evaluated by the modified Lentz method.

    .. math::

        I_x(a, b) = \frac{x^a (1-x)^b}{a\,B(a, b)}\;
            \cfrac{1}{1 + \cfrac{d_1}{1 + \cfrac{d_2}{1 + \cdots}}}, \qquad
        d_{2m+1} = -\frac{(a+m)(a+b+m)\,x}{(a+2m)(a+2m+1)}, \quad
        d_{2m} = \frac{m(b-m)\,x}{(a+2m-1)(a+2m)},

    which converges fast for :math:`x < (a+1)/(a+b+2)`; this returns the fraction alone.
    """
    tiny = 1e-300

    def guard(value: float) -> float:
        return value if abs(value) > tiny else tiny

    c = 1.0
    d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    fraction = d
    for m in range(1, 1000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        d = 1.0 / guard(1.0 + even * d)
        c = guard(1.0 + even / c)
        fraction *= d * c
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 / guard(1.0 + odd * d)
        c = guard(1.0 + odd / c)
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < 1e-15:
            return fraction
    raise ArithmeticError(f"the incomplete beta fraction did not converge for a={a}, b={b}, x={x}")


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    r"""The regularized incomplete beta function
    :math:`I_x(a, b) = \frac{1}{B(a, b)} \int_0^x s^{a-1} (1-s)^{b-1}\,ds` for
    :math:`a, b > 0`, :math:`0 \le x \le 1` (pure Python, no scipy).

    Uses the continued fraction of :func:`_beta_continued_fraction` directly when
    :math:`x < (a+1)/(a+b+2)`, and the symmetry :math:`I_x(a, b) = 1 - I_{1-x}(b, a)` otherwise.
    """
    if not (a > 0 and b > 0):
        raise ValueError(f"a and b must be > 0, got a={a!r}, b={b!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x!r}")
    if x in (0.0, 1.0):
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, dof: float) -> float:
    r"""Two-sided p-value :math:`P(|T| \ge |t|)` of Student's t with ``dof`` degrees of freedom:

    .. math::

        P(|T| \ge |t|) = I_{\nu / (\nu + t^2)}\left(\tfrac{\nu}{2}, \tfrac{1}{2}\right),
        \qquad \nu = \texttt{dof} > 0.
    """
    if not dof > 0:
        raise ValueError(f"dof must be > 0, got {dof!r}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return regularized_incomplete_beta(dof / 2.0, 0.5, dof / (dof + t * t))


class PowerFit(NamedTuple):
    r"""Result of :func:`power_fit`: :math:`y \approx e^{a} N^{b}`."""

    a: float
    b: float
    r2: float
    adj_r2: float
    p_value: float

    def predict(self, budgets: ArrayLike) -> NDArray[np.float64]:
        r"""The fitted power law :math:`e^{a} N^{b}` at ``budgets``."""
        fitted: NDArray[np.float64] = np.exp(self.a) * np.asarray(budgets, dtype=float) ** self.b
        return fitted


def power_fit(budgets: ArrayLike, values: ArrayLike) -> PowerFit:
    r"""Fit a power law :math:`y = e^{A} N^{B}` by ordinary least squares on logarithms.

    With :math:`x_k = \ln N_k`, :math:`z_k = \ln y_k`, :math:`k = 1, \dots, n`:

    .. math::

        B = \frac{\sum_k (x_k - \bar x)(z_k - \bar z)}{\sum_k (x_k - \bar x)^2}, \qquad
        A = \bar z - B \bar x, \qquad
        R^2 = 1 - \frac{\mathrm{SSE}}{\mathrm{SST}}, \qquad
        \bar R^2 = 1 - (1 - R^2)\,\frac{n - 1}{n - 2},

    where :math:`\mathrm{SSE} = \sum_k (z_k - A - B x_k)^2` and
    :math:`\mathrm{SST} = \sum_k (z_k - \bar z)^2`. The p-value is the two-sided t-test of
    :math:`B = 0` with :math:`n - 2` degrees of freedom,
    :math:`t = B / \sqrt{\mathrm{SSE} / ((n - 2) \sum_k (x_k - \bar x)^2)}`: two degrees of
    freedom for the paper's four budgets. An exact power law gives :math:`R^2 = 1` and
    :math:`p = 0`; constant values give :math:`B = 0` and leave :math:`R^2`, :math:`\bar R^2` and
    :math:`p` undefined (NaN).

    Parameters
    ----------
    budgets
        The epoch budgets :math:`N_k` (1-D, positive, finite, not all equal).
    values
        The metric :math:`y_k` at each budget (same length, positive, finite; at least 3 points).

    Returns
    -------
    PowerFit
        ``(a, b, r2, adj_r2, p_value)``, with :meth:`PowerFit.predict` for the fitted curve.
    """
    n_arr = _as_1d_float(budgets, "budgets", min_size=3)
    y = _as_1d_float(values, "values", min_size=3)
    if y.size != n_arr.size:
        raise ValueError(
            f"budgets and values must have the same length; got {n_arr.size} and {y.size}"
        )
    _require_positive(n_arr, "budgets", "(the fit is on ln N)")
    _require_positive(y, "values", "(the fit is on ln y)")
    x, z = np.log(n_arr), np.log(y)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx == 0.0:
        raise ValueError(f"budgets must not all be equal; got {n_arr.tolist()}")
    dz = z - z.mean()
    b = float(dx @ dz) / sxx
    a = float(z.mean() - b * x.mean())
    dof = y.size - 2
    sse = float(np.sum((dz - b * dx) ** 2))
    sst = float(dz @ dz)
    if sst == 0.0:
        return PowerFit(a=a, b=b, r2=np.nan, adj_r2=np.nan, p_value=np.nan)
    r2 = 1.0 - sse / sst
    adj_r2 = 1.0 - (1.0 - r2) * (y.size - 1) / dof
    if sse == 0.0:
        p_value = 0.0
    else:
        t = b / math.sqrt(sse / (dof * sxx))
        p_value = student_t_two_sided_p(t, dof)
    return PowerFit(a=a, b=b, r2=r2, adj_r2=adj_r2, p_value=p_value)
