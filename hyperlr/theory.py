r"""What theory predicts about a schedule's best learning rate as the budget grows.

Two models of training, both cheap enough to tune exhaustively (``../shared/THEORY.md``):

* the **convex last-iterate bound** of SGD on a convex, :math:`G`-Lipschitz objective with
  :math:`D = \lVert x_1 - x^*\rVert` (Defazio et al. 2023, Thm. 10), for rates
  :math:`\eta_1, \dots, \eta_T > 0`:

  .. math::

      \Omega(\eta) = \frac{D^2}{2 S_1} + \frac{G^2 Q_1}{2 S_1}
      + \frac{G^2}{2} \sum_{k=1}^{T-1} \frac{\eta_k}{S_{k+1}}\,\frac{Q_k}{S_k},
      \qquad S_k = \sum_{t=k}^T \eta_t,\quad Q_k = \sum_{t=k}^T \eta_t^2 .

  With :math:`\eta_t = \gamma s_t` it is :math:`A/\gamma + B\gamma`, so
  :math:`\gamma^* = \sqrt{A/B}` and :math:`\Omega^* = 2\sqrt{AB}` (:func:`convex_optimum`);
* the **noisy quadratic model** (Zhang et al. 2019): :math:`L = \frac12\sum_i h_i\theta_i^2`,
  :math:`h_i = i^{-a}`, gradient noise of variance :math:`\sigma^2 h_i`, whose second moments
  follow :math:`m_i \leftarrow (1 - \eta h_i)^2 m_i + \eta^2\sigma^2 h_i` exactly
  (:func:`nqm_loss`). Over :math:`c` steps at one rate this is the geometric sum
  :math:`m_i \leftarrow r^c m_i + \eta^2\sigma^2 h_i (1 - r^c)/(1 - r)`,
  :math:`r = (1 - \eta h_i)^2`, so a per-epoch schedule costs one update per epoch.

The schedules are the registry's own (:func:`schedule_lrs` steps the same PyTorch schedulers
the experiments train with), so theory and experiments cannot drift apart. :func:`transfer`
runs the paper's protocol in either model: tune at a short budget, keep the settings, measure
the regret against retuning and the gap to the best retuned schedule at every budget.
:func:`rescaled_rate` is the practitioner's version: the rate the bound picks at a new budget,
beside the square-root rule.

Only numpy at import; torch is imported when a registry schedule is built.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "MODELS",
    "NQM",
    "PAPER_GRIDS",
    "REGIMES",
    "SQRT_RULE",
    "ConvexOptimum",
    "RateAdvice",
    "TransferResult",
    "TransferRow",
    "average_rate_ratio",
    "convex_bound",
    "convex_bound_terms",
    "convex_optimum",
    "nqm_curve",
    "nqm_loss",
    "nqm_optimum",
    "rescaled_rate",
    "schedule_free_nqm_loss",
    "schedule_lrs",
    "transfer",
]

#: The base rate the registry's absolute settings (floors of 1e-7 to 1e-4) are read against:
#: the paper's learning rate. A schedule's *shape* is its rates at this base rate divided by it.
REFERENCE_LR = 1e-3
#: The schedule-free momentum-like interpolation weight (Defazio et al. 2024's default).
SF_BETA = 0.9
#: Names of the square-root rule applied to a registry schedule: the schedule, then this suffix.
SQRT_RULE = "+sqrt"


# ------------------------------------------------------------------------------- validation


def _rates(lrs: ArrayLike, name: str = "lrs") -> np.ndarray:
    rates = np.asarray(lrs, dtype=float)
    if rates.ndim != 1 or rates.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D sequence of rates, got shape {rates.shape}"
        )
    if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"{name} must hold finite rates > 0, got min {rates.min()!r}")
    return rates


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) < math.inf:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- convex bound


def convex_bound_terms(shape: ArrayLike, D: float = 1.0, G: float = 1.0) -> tuple[float, float]:
    r"""The coefficients :math:`(A, B)` of the bound :math:`A/\gamma + B\gamma` for
    :math:`\eta_t = \gamma s_t`: :math:`A = D^2 / (2 S_1)` and :math:`B` the two
    :math:`G^2` terms of :func:`convex_bound` at :math:`\gamma = 1`. Computed in :math:`O(T)`
    from suffix sums."""
    s = _rates(shape, "shape")
    D, G = _positive("D", D), _positive("G", G)
    suffix = np.cumsum(s[::-1])[::-1]  # S_k = sum_{t >= k} s_t
    suffix_sq = np.cumsum((s * s)[::-1])[::-1]  # Q_k
    A = D * D / (2.0 * suffix[0])
    last = np.sum(s[:-1] / suffix[1:] * suffix_sq[:-1] / suffix[:-1])
    B = G * G / 2.0 * (suffix_sq[0] / suffix[0] + last)
    return float(A), float(B)


def convex_bound(lrs: ArrayLike, D: float = 1.0, G: float = 1.0) -> float:
    r"""The last-iterate bound on :math:`\mathbb E f(x_T) - f_*` of SGD with rates ``lrs``.

    .. math::

        \frac{D^2}{2 S_1} + \frac{G^2 Q_1}{2 S_1}
        + \frac{G^2}{2} \sum_{k=1}^{T-1} \frac{\eta_k}{S_{k+1}}\,\frac{Q_k}{S_k}

    with suffix sums :math:`S_k = \sum_{t \ge k}\eta_t`, :math:`Q_k = \sum_{t\ge k}\eta_t^2`
    (Defazio et al. 2023, Thm. 10), in :math:`O(T)`.

    Raises:
        ValueError: ``lrs`` not a non-empty 1-D sequence of positive finite rates; ``D`` or
            ``G`` not positive.
    """
    A, B = convex_bound_terms(_rates(lrs), D, G)
    return A + B


@dataclass(frozen=True)
class ConvexOptimum:
    """The bound's optimum over the base rate for one shape: ``rate`` :math:`=\\sqrt{A/B}`,
    ``bound`` :math:`=2\\sqrt{AB}`, and the coefficients ``A``, ``B``."""

    rate: float
    bound: float
    A: float
    B: float


def convex_optimum(shape: ArrayLike, D: float = 1.0, G: float = 1.0) -> ConvexOptimum:
    r"""The base rate :math:`\gamma^* = \sqrt{A/B}` minimising the bound of
    :math:`\eta_t = \gamma s_t`, and the bound there, :math:`2\sqrt{AB}`."""
    A, B = convex_bound_terms(shape, D, G)
    return ConvexOptimum(math.sqrt(A / B), 2.0 * math.sqrt(A * B), A, B)


def average_rate_ratio(x: ArrayLike, kind: str = "H", floor: float = 0.0) -> np.ndarray:
    r"""The average rate of HyperbolicLR (``kind="H"``) or ExpHyperbolicLR (``"EH"``) over its
    budget, as a fraction of :math:`\eta_{init}`, at :math:`x = N/U \in (0, 1]`, in the
    continuous limit (a long budget), with ``floor`` :math:`= \eta_{inf}/\eta_{init}`.

    With :math:`u = n/U`, :math:`h = \sqrt{(x-u)(2-x-u)}`, :math:`c = 1 - x` and
    :math:`h_0 = \sqrt{x(2-x)} = \sqrt{1-c^2}`, substituting :math:`w = 1 - u` turns the area
    under the arc into one under a hyperbola, :math:`\int_c^1 \sqrt{w^2 - c^2}\,dw
    = \frac12\bigl[h_0 - c^2 \ln\frac{1 + h_0}{c}\bigr]`, so for H

    .. math::

        \frac{\bar\eta_H}{\eta_{init}} = 1 - (1-\rho)\Bigl(h_0
        - \frac{h_0 - c^2\ln((1+h_0)/c)}{2x}\Bigr),

    :math:`\rho` the floor (at :math:`x = 1`: :math:`(1+\rho)/2`, linear decay). EH's average
    :math:`\frac1x\int_0^x \rho^{h_0 - h}\,du` has no elementary form; it is integrated by
    Gauss-Legendre quadrature after :math:`u = x(1 - v^2)`, which removes the square-root end.
    """
    x = np.asarray(x, dtype=float)
    if np.any(~np.isfinite(x)) or np.any(x <= 0) or np.any(x > 1):
        raise ValueError(f"x must lie in (0, 1], got {x!r}")
    if kind not in ("H", "EH"):
        raise ValueError(f"kind must be 'H' or 'EH', got {kind!r}")
    if not isinstance(floor, Real) or not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor!r}")
    h0 = np.sqrt(x * (2 - x))
    if kind == "H":
        c = 1 - x
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(c > 0, c * c * np.log((1 + h0) / np.where(c > 0, c, 1)), 0.0)
        area = 0.5 * (h0 - log_term)
        return 1 - (1 - floor) * (h0 - area / x)
    if floor == 0:
        raise ValueError("floor must be > 0 for EH (a geometric decay to zero is undefined)")
    # Substitute u = x * (1 - v^2) (v in [0, 1]) to tame the square-root end at u = x.
    nodes, weights = np.polynomial.legendre.leggauss(200)
    v = (nodes + 1) / 2
    w = weights / 2
    u = x[..., None] * (1 - v**2)
    h = np.sqrt(np.clip((x[..., None] - u) * (2 - x[..., None] - u), 0, None))
    integrand = floor ** (h0[..., None] - h) * 2 * v * x[..., None]
    return np.sum(integrand * w, axis=-1) / x


# ------------------------------------------------------------------- noisy quadratic model


@dataclass(frozen=True)
class NQM:
    r"""A noisy quadratic model: ``dim`` coordinates, curvatures :math:`h_i = i^{-a}`, initial
    second moments :math:`\propto i^{-b}` scaled so the expected loss starts at 1, gradient
    noise variance :math:`\sigma^2 h_i` (``sigma2``)."""

    dim: int = 400
    a: float = 1.0
    b: float = 1.0
    sigma2: float = 1e-2

    def __post_init__(self) -> None:
        _count("dim", self.dim)
        _positive("a", self.a)
        if isinstance(self.b, bool) or not isinstance(self.b, Real) or not math.isfinite(self.b):
            raise ValueError(f"b must be a finite number, got {self.b!r}")
        _positive("sigma2", self.sigma2)

    @property
    def curvatures(self) -> np.ndarray:
        return np.arange(1, self.dim + 1, dtype=float) ** -self.a

    @property
    def initial_moments(self) -> np.ndarray:
        m = np.arange(1, self.dim + 1, dtype=float) ** -self.b
        return m / (0.5 * np.sum(self.curvatures * m))

    @property
    def stability_limit(self) -> float:
        """The largest rate at which no coordinate grows: :math:`2 / h_{max}`."""
        return 2.0 / float(self.curvatures.max())


#: THEORY.md §3's two regimes: noise-dominated ("easy") and signal-limited ("hard").
REGIMES: dict[str, NQM] = {
    "easy": NQM(dim=400, a=1.0, b=1.0, sigma2=1e-2),
    "hard": NQM(dim=400, a=1.5, b=0.0, sigma2=1e-4),
}
#: The models :func:`transfer` accepts by name.
MODELS = ("convex", *REGIMES)


def _nqm(regime: str | NQM) -> NQM:
    if isinstance(regime, NQM):
        return regime
    if regime not in REGIMES:
        raise ValueError(f"regime must be one of {', '.join(REGIMES)} or an NQM, got {regime!r}")
    return REGIMES[regime]


def _runs(rates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding: the distinct consecutive rates and how many steps each lasts."""
    starts = np.flatnonzero(np.r_[True, rates[1:] != rates[:-1]])
    counts = np.diff(np.r_[starts, rates.size])
    return rates[starts], counts


def _advance(
    m: np.ndarray, eta: np.ndarray, count: int, h: np.ndarray, sigma2: float
) -> np.ndarray:
    """``count`` exact NQM steps at rates ``eta`` (shape (G, 1)) from moments ``m`` (G, d)."""
    step = eta * h
    r = (1.0 - step) ** 2
    if count == 1:
        return np.asarray(r * m + eta * step * sigma2)
    rc = r**count
    denominator = 1.0 - r
    # sum_{j < count} r^j; where r is 1 (a rate of 0 or 2/h) it is count.
    geometric = np.divide(
        1.0 - rc, denominator, out=np.full_like(r, count), where=np.abs(denominator) > 1e-12
    )
    return np.asarray(rc * m + eta * step * sigma2 * geometric)


def _nqm_losses(shape: np.ndarray, gammas: np.ndarray, model: NQM) -> np.ndarray:
    """Expected final loss for every base rate in ``gammas`` (vectorised)."""
    h = model.curvatures
    m = np.broadcast_to(model.initial_moments, (gammas.size, h.size)).copy()
    values, counts = _runs(shape)
    for value, count in zip(values, counts, strict=True):
        m = _advance(m, gammas[:, None] * value, int(count), h, model.sigma2)
    return np.asarray(0.5 * m @ h)


def nqm_loss(lrs: ArrayLike, regime: str | NQM = "easy") -> float:
    r"""The exact expected loss :math:`\frac12\sum_i h_i m_i` of the noisy quadratic model after
    SGD steps at rates ``lrs``, from :math:`\mathbb E L = 1`.

    Args:
        lrs: the per-step rates, positive.
        regime: ``"easy"``, ``"hard"`` (:data:`REGIMES`) or an :class:`NQM` of one's own.

    Raises:
        ValueError: bad ``lrs`` or an unknown ``regime``.
    """
    rates = _rates(lrs)
    return float(_nqm_losses(rates, np.array([1.0]), _nqm(regime))[0])


def nqm_curve(lrs: ArrayLike, regime: str | NQM = "easy", every: int = 1) -> np.ndarray:
    """The expected loss after every ``every`` steps (an epoch's steps: one point per epoch);
    ``len(lrs)`` must be a multiple of ``every``."""
    rates = _rates(lrs)
    every = _count("every", every)
    if rates.size % every:
        raise ValueError(f"every ({every}) must divide the number of rates ({rates.size})")
    model = _nqm(regime)
    h = model.curvatures
    m = model.initial_moments[None, :].copy()
    out = []
    for chunk in rates.reshape(-1, every):
        values, counts = _runs(chunk)
        for value, count in zip(values, counts, strict=True):
            m = _advance(m, np.array([[value]]), int(count), h, model.sigma2)
        out.append(0.5 * float(m[0] @ h))
    return np.array(out)


def _sf_losses(
    steps: int,
    gammas: np.ndarray,
    model: NQM,
    beta: float = SF_BETA,
    record: Sequence[int] | None = None,
) -> np.ndarray:
    r"""Schedule-free SGD's exact expected loss at its averaged iterate :math:`x`, per base rate
    (shape ``(len(gammas),)``; with ``record``, ``(len(record), len(gammas))``: the loss after
    each recorded number of steps, all from one trajectory).

    :math:`y_t = (1-\beta) z_t + \beta x_t`, :math:`z_{t+1} = z_t - \gamma(h y_t + \xi_t)`,
    :math:`x_{t+1} = (1 - c) x_t + c z_{t+1}` with :math:`c = 1/(t+1)`, :math:`x_1 = z_1`. The
    pair :math:`(z, x)` evolves linearly, :math:`v' = M v + b\xi`, so its second moments do too:
    :math:`\Sigma' = M\Sigma M^\top + \sigma^2 h\, b b^\top`.
    """
    h = model.curvatures[None, :]
    g = gammas[:, None]
    m0 = np.broadcast_to(model.initial_moments, (gammas.size, h.size))
    zz, zx, xx = m0.copy(), m0.copy(), m0.copy()
    a = 1.0 - g * h * (1.0 - beta)  # z' = a z - q x - g xi
    q = g * h * beta
    noise = model.sigma2 * h * g * g
    wanted = set(record) if record is not None else {steps}
    out = {}
    for t in range(1, steps + 1):
        c = 1.0 / (t + 1)
        # x' = c z' + (1 - c) x = c a z + (1 - c - c q) x - c g xi
        p, r = c * a, 1.0 - c - c * q
        zz, zx, xx = (
            a * a * zz - 2 * a * q * zx + q * q * xx + noise,
            a * p * zz + (a * r - q * p) * zx - q * r * xx + c * noise,
            p * p * zz + 2 * p * r * zx + r * r * xx + c * c * noise,
        )
        if t in wanted:
            out[t] = 0.5 * np.sum(h * xx, axis=1)
    if record is None:
        return np.asarray(out[steps])
    return np.stack([out[t] for t in record])


def schedule_free_nqm_loss(
    gamma: float, steps: int, regime: str | NQM = "easy", beta: float = SF_BETA
) -> float:
    """Schedule-free SGD's exact expected loss at its averaged iterate after ``steps`` steps
    at base rate ``gamma`` (see :func:`_sf_losses` for the recursion)."""
    _positive("gamma", gamma)
    if not isinstance(beta, Real) or not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    return float(_sf_losses(_count("steps", steps), np.array([gamma]), _nqm(regime), beta)[0])


def _parabola(grid: np.ndarray, values: np.ndarray, k: int) -> float | None:
    """The vertex in log rate of the parabola through the grid's points ``k-1, k, k+1``."""
    if not 0 < k < grid.size - 1:
        return None
    x = np.log(grid[k - 1 : k + 2])
    y = values[k - 1 : k + 2]
    spacing = x[1] - x[0]
    curvature = (y[2] - 2 * y[1] + y[0]) / spacing**2
    if not curvature > 0:
        return None
    return float(np.exp(np.clip(x[1] - (y[2] - y[0]) / (2 * spacing) / curvature, x[0], x[2])))


def _minimise_log(
    evaluate: Callable[[np.ndarray], np.ndarray], high: float, points: int = 9, rounds: int = 4
) -> tuple[float, float]:
    """Minimise a function of the base rate below ``high``: a log grid of ``points`` over four
    decades (moved down while the lowest point is best), then ``rounds - 1`` grids between the
    best point's neighbours, then a parabola in log rate through the three best points."""
    low = high * 1e-4
    for _ in range(6):
        grid = np.geomspace(low, high, points)
        values = evaluate(grid)
        k = int(np.nanargmin(values))
        if k > 0:
            break
        low, high = low * 1e-4, grid[1]
    for _ in range(rounds - 1):
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
        grid = np.geomspace(lo, hi, points)
        values = evaluate(grid)
        k = int(np.nanargmin(values))
    rate, loss = float(grid[k]), float(values[k])
    candidate = _parabola(grid, values, k)
    if candidate is not None:
        value = float(evaluate(np.array([candidate]))[0])
        if value < loss:
            rate, loss = candidate, value
    return rate, loss


def _sf_optima(step_counts: Sequence[int], model: NQM) -> dict[int, tuple[float, float]]:
    """Schedule-free SGD's best base rate and loss after each of ``step_counts`` steps, from one
    trajectory per rate of a dense log grid (121 rates over four decades below the stability
    limit), refined by a parabola in log rate."""
    counts = sorted(set(step_counts))
    grid = np.geomspace(model.stability_limit * 1e-4, model.stability_limit, 121)
    losses = _sf_losses(counts[-1], grid, model, record=counts)
    found = {}
    for count, values in zip(counts, losses, strict=True):
        k = int(np.nanargmin(values))
        rate, loss = float(grid[k]), float(values[k])
        candidate = _parabola(grid, values, k)
        if candidate is not None:
            value = float(_sf_losses(count, np.array([candidate]), model)[0])
            if value < loss:
                rate, loss = candidate, value
        found[count] = (rate, loss)
    return found


def nqm_optimum(shape: ArrayLike, regime: str | NQM = "easy") -> tuple[float, float]:
    r"""The base rate :math:`\gamma` minimising the NQM's expected final loss of
    :math:`\eta_t = \gamma s_t`, and that loss, searched over
    :math:`(0, 2/(h_{max}\max_t s_t)]` (no step past the stability limit): log grids that
    narrow around the best point, then a parabola."""
    s = _rates(shape, "shape")
    model = _nqm(regime)
    return _minimise_log(lambda g: _nqm_losses(s, g, model), model.stability_limit / float(s.max()))


# ------------------------------------------------------------------------------- schedules

_DURATION_SETTINGS = ("upper_bound",)


@lru_cache(maxsize=4096)
def _registry_lrs(
    code: str,
    budget: int,
    steps_per_epoch: int,
    base_lr: float,
    per_step: bool,
    items: tuple[tuple[str, Any], ...],
) -> np.ndarray:
    import torch

    from .registry import is_per_batch, make_scheduler

    settings = dict(items)
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=base_lr)
    if per_step:
        scale = steps_per_epoch
        for name in _DURATION_SETTINGS:
            if name in settings:
                settings[name] = settings[name] * scale
        if "gamma" in settings and code == "E":
            settings["gamma"] = settings["gamma"] ** (1.0 / scale)
        scheduler = make_scheduler(code, optimizer, epochs=budget * scale, **settings)
        epochs, inner, batch_steps = budget * scale, 1, True
    else:
        scheduler = make_scheduler(
            code, optimizer, epochs=budget, steps_per_epoch=steps_per_epoch, **settings
        )
        epochs, inner, batch_steps = budget, steps_per_epoch, is_per_batch(code)
    rates = np.empty(epochs * inner)
    # The parameter has no gradient, so an optimizer step changes nothing but PyTorch's record
    # that one came first (it warns otherwise): one step before the first scheduler step is
    # enough, and skipping the others makes this many times faster for long runs.
    optimizer.step()
    for epoch in range(epochs):
        start = epoch * inner
        if batch_steps:
            for k in range(start, start + inner):
                rates[k] = optimizer.param_groups[0]["lr"]
                scheduler.step()
        else:
            rates[start : start + inner] = optimizer.param_groups[0]["lr"]
            scheduler.step()
    rates.setflags(write=False)
    return rates


def schedule_lrs(
    name: str,
    budget: int,
    steps_per_epoch: int = 1,
    *,
    base_lr: float = REFERENCE_LR,
    per_step: bool = False,
    **settings: Any,
) -> np.ndarray:
    """The rate of every optimizer step of a run of ``budget`` epochs with the registry
    schedule ``name``, as the training loop applies it.

    The registry's scheduler is built for an SGD optimizer at ``base_lr`` with ``settings``
    overriding its defaults, and stepped as the experiments step it: once per epoch (after the
    epoch's ``steps_per_epoch`` optimizer steps), or once per optimizer step for the per-batch
    codes. ``per_step=True`` instead builds it over ``budget * steps_per_epoch`` scheduler steps
    and steps it after every optimizer step; ``upper_bound`` (in epochs) is then multiplied and
    E's per-epoch ``gamma`` taken to the power ``1/steps_per_epoch``, so the curve is the same,
    only smooth. ``"SF"`` (schedule-free) is a constant rate.

    Raises:
        ValueError: an unknown name, a bad budget or steps per epoch, or a setting the
            registry refuses.
    """
    budget = _count("budget", budget)
    steps_per_epoch = _count("steps_per_epoch", steps_per_epoch)
    base_lr = _positive("base_lr", base_lr)
    if name == "SF":
        if settings:
            raise ValueError(f"SF takes no settings, got {sorted(settings)}")
        return np.full(budget * steps_per_epoch, base_lr)
    from .registry import SCHEDULER_CODES

    if name not in SCHEDULER_CODES:
        known = ", ".join([*SCHEDULER_CODES, "SF"])
        raise ValueError(f"name must be a registry code or SF; known: {known}; got {name!r}")
    items = tuple(sorted(settings.items()))
    return _registry_lrs(name, budget, steps_per_epoch, base_lr, bool(per_step), items).copy()


# ------------------------------------------------------------------------ transfer protocol

#: The paper's search spaces (PAPER.md §2) on grids, per schedule: ``(name, values)`` pairs.
#: ``upper_bound`` is in units of the paper's budgets and multiplied by ``time_scale``; E's
#: per-epoch ``gamma`` is raised to ``1 / time_scale``. Floors are absolute, read against
#: :data:`REFERENCE_LR`.
PAPER_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "N": {},
    "L": {},
    "SF": {},
    "P": {"power": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)},
    "C": {"eta_min": (1e-7, 1e-6, 1e-5, 1e-4)},
    "E": {"gamma": (0.9, 0.92, 0.94, 0.96, 0.98, 0.99)},
    "H": {"infimum_lr": (1e-7, 1e-6, 1e-5, 1e-4), "upper_bound": (200, 250, 300, 350, 400)},
    "EH": {"infimum_lr": (1e-7, 1e-6, 1e-5, 1e-4), "upper_bound": (200, 250, 300, 350, 400)},
    "WSD": {"infimum_lr": (1e-7, 1e-6, 1e-5, 1e-4)},
}


def _settings_grid(
    name: str, grids: Mapping[str, Mapping[str, Any]], time_scale: float
) -> list[dict[str, Any]]:
    if name not in grids:
        raise ValueError(f"no search grid for {name!r}; grids for: {', '.join(grids)}")
    grid = grids[name]
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    for combo in combos:
        if "upper_bound" in combo:
            combo["upper_bound"] = max(1, round(combo["upper_bound"] * time_scale))
        if name == "E" and "gamma" in combo:
            combo["gamma"] = combo["gamma"] ** (1.0 / time_scale)
    return combos or [{}]


@dataclass(frozen=True)
class TransferRow:
    """One schedule at one budget of :func:`transfer`.

    ``rate``/``settings``: what was tuned at the tuning budget (the square-root rule's rate is
    rescaled); ``loss``: the model's loss with them at ``budget``; ``retuned_*``: the best over
    the grid and the rate at ``budget``; ``regret`` = loss / retuned_loss - 1; ``envelope``:
    the best retuned loss of all schedules at ``budget``; ``gap`` = loss / envelope - 1 (NaN for
    schedule-free SGD under the convex bound, which bounds another iterate);
    ``optimal_rate``: the best rate at ``budget`` with the tuned settings kept."""

    schedule: str
    budget: int
    rate: float
    settings: dict[str, Any]
    loss: float
    retuned_rate: float
    retuned_settings: dict[str, Any]
    retuned_loss: float
    regret: float
    envelope: float
    gap: float
    optimal_rate: float


@dataclass(frozen=True)
class TransferResult:
    """The rows of :func:`transfer`, and per schedule the exponent :math:`\\beta` of the least
    squares fit :math:`\\log\\gamma^*(T) = c + \\beta\\log T` over the budgets (tuned settings
    kept)."""

    model: str
    tune_budget: int
    rows: tuple[TransferRow, ...]
    exponents: dict[str, float] = field(default_factory=dict)

    def row(self, schedule: str, budget: int) -> TransferRow:
        for row in self.rows:
            if row.schedule == schedule and row.budget == budget:
                return row
        raise KeyError((schedule, budget))


class _Model:
    """Loss of a shape at a base rate, and the optimum, in one of the models."""

    def __init__(self, model: str | NQM, D: float, G: float) -> None:
        if isinstance(model, str) and model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)} or an NQM, got {model!r}")
        self.convex = model == "convex"
        self.name = model if isinstance(model, str) else "custom NQM"
        self.nqm = _nqm("easy" if self.convex else model)  # unused by the convex bound
        self.D, self.G = D, G
        self.sf_optima: dict[int, tuple[float, float]] = {}

    def prepare_sf(self, step_counts: Sequence[int]) -> None:
        """Compute schedule-free SGD's optima for all these step counts in one pass (NQM)."""
        if not self.convex:
            self.sf_optima.update(_sf_optima(step_counts, self.nqm))

    def loss(self, name: str, shape: np.ndarray, gamma: float) -> float:
        if name == "SF":
            if self.convex:  # Defazio et al. 2024: D^2/(2 gamma T) + gamma G^2 / 2
                return self.D**2 / (2 * gamma * shape.size) + gamma * self.G**2 / 2
            return float(_sf_losses(shape.size, np.array([gamma]), self.nqm)[0])
        if self.convex:
            return convex_bound(gamma * shape, self.D, self.G)
        return float(_nqm_losses(shape, np.array([gamma]), self.nqm)[0])

    def optimum(self, name: str, shape: np.ndarray) -> tuple[float, float]:
        if name == "SF":
            if self.convex:
                return self.D / (self.G * math.sqrt(shape.size)), self.D * self.G / math.sqrt(
                    shape.size
                )
            if shape.size not in self.sf_optima:
                self.prepare_sf([shape.size])
            return self.sf_optima[shape.size]
        if self.convex:
            best = convex_optimum(shape, self.D, self.G)
            return best.rate, best.bound
        return nqm_optimum(shape, self.nqm)


def transfer(
    schedules: Sequence[str],
    model: str | NQM = "convex",
    *,
    tune_budget: int = 50,
    budgets: Sequence[int] = (50, 100, 150, 200),
    steps_per_epoch: int = 1,
    time_scale: float = 1.0,
    grids: Mapping[str, Mapping[str, Any]] | None = None,
    fixed: Mapping[str, Mapping[str, Any]] | None = None,
    per_step: bool = False,
    D: float = 1.0,
    G: float = 1.0,
) -> TransferResult:
    r"""The paper's transfer protocol, in a model where tuning is exact.

    For every schedule: at ``tune_budget``, the base rate is optimal for each setting of the
    grid (closed form for the convex bound, a numeric search in the NQM) and the best setting
    is kept; at every budget the loss with those settings is compared with the best over the
    grid and the rate retuned there (the regret), and with the best retuned loss of all
    schedules (the envelope; under the convex bound schedule-free SGD is left out of it, its
    bound being for a different iterate). A name ``"C+sqrt"`` keeps C's tuned settings and
    scales its rate by :math:`\sqrt{T_0/T}`; its retuned loss is C's. Shapes are the registry's
    rates at :data:`REFERENCE_LR` divided by it.

    Args:
        schedules: registry codes, ``"SF"``, or a code followed by ``"+sqrt"``.
        model: ``"convex"``, ``"easy"``, ``"hard"`` or an :class:`NQM`.
        tune_budget: the tuning budget in epochs (one of ``budgets`` or not).
        budgets: the budgets to report, epochs.
        steps_per_epoch: optimizer steps per epoch.
        time_scale: multiplies the grids' durations (see :data:`PAPER_GRIDS`).
        grids: per schedule, settings and their candidate values; the paper's by default.
        fixed: per schedule, settings that replace the grid (e.g. ``{"H": {"upper_bound":
            400}}``), applied after ``time_scale``.
        per_step: step the schedules per optimizer step (see :func:`schedule_lrs`).
        D, G: the convex bound's distance and Lipschitz constant.

    Raises:
        ValueError: an unknown schedule or model, a bad budget, a schedule without a grid, or
            a setting the registry refuses (e.g. an upper bound below a budget).
    """
    if isinstance(schedules, str) or not schedules:
        raise ValueError(f"schedules must be a non-empty list of names, got {schedules!r}")
    tune_budget = _count("tune_budget", tune_budget)
    budgets = [_count("budgets", b) for b in budgets]
    if not budgets:
        raise ValueError("budgets must not be empty")
    steps_per_epoch = _count("steps_per_epoch", steps_per_epoch)
    time_scale = _positive("time_scale", time_scale)
    grids = PAPER_GRIDS if grids is None else grids
    fixed = fixed or {}
    evaluator = _Model(model, _positive("D", D), _positive("G", G))

    def base_of(name: str) -> str:
        return name[: -len(SQRT_RULE)] if name.endswith(SQRT_RULE) else name

    for name in schedules:
        if name.endswith(SQRT_RULE) and base_of(name) == "SF":
            raise ValueError("the square-root rule applies to registry schedules, not SF")

    def shape(name: str, budget: int, settings: dict[str, Any]) -> np.ndarray:
        rates = schedule_lrs(
            name, budget, steps_per_epoch, base_lr=REFERENCE_LR, per_step=per_step, **settings
        )
        return rates / REFERENCE_LR

    optima: dict[tuple[Any, ...], tuple[float, float]] = {}

    def optimum(name: str, budget: int, settings: dict[str, Any]) -> tuple[float, float]:
        key = (name, budget, tuple(sorted(settings.items())))
        if key not in optima:
            optima[key] = evaluator.optimum(name, shape(name, budget, settings))
        return optima[key]

    def candidates(name: str) -> list[dict[str, Any]]:
        combos = _settings_grid(name, grids, time_scale)
        return [{**combo, **fixed.get(name, {})} for combo in combos]

    def best(name: str, budget: int) -> tuple[float, dict[str, Any], float]:
        found: tuple[float, dict[str, Any], float] | None = None
        for settings in candidates(name):
            rate, loss = optimum(name, budget, settings)
            if found is None or loss < found[2]:
                found = (rate, settings, loss)
        if found is None:
            raise ValueError(f"grids: no settings to try for {name!r}")
        return found

    if "SF" in map(base_of, schedules):
        evaluator.prepare_sf([b * steps_per_epoch for b in [tune_budget, *budgets]])
    tuned = {name: best(base_of(name), tune_budget) for name in dict.fromkeys(schedules)}
    retuned = {
        (base, budget): best(base, budget)
        for base in dict.fromkeys(map(base_of, schedules))
        for budget in budgets
    }
    envelope = {
        budget: min(
            loss
            for (base, b), (_, _, loss) in retuned.items()
            if b == budget and not (evaluator.convex and base == "SF")
        )
        for budget in budgets
    }
    rows, exponents = [], {}
    for name in schedules:
        base = base_of(name)
        rate0, settings, _ = tuned[name]
        kept_optima = []
        for budget in budgets:
            rate = rate0 * math.sqrt(tune_budget / budget) if name != base else rate0
            loss = evaluator.loss(base, shape(base, budget, settings), rate)
            r_rate, r_settings, r_loss = retuned[(base, budget)]
            opt_rate = optimum(base, budget, settings)[0]
            kept_optima.append(opt_rate)
            rows.append(
                TransferRow(
                    name, budget, rate, dict(settings), loss, r_rate, dict(r_settings), r_loss,
                    loss / r_loss - 1, envelope[budget],
                    math.nan if evaluator.convex and base == "SF" else loss / envelope[budget] - 1,
                    opt_rate,
                )
            )  # fmt: skip
        if len(set(budgets)) > 1:
            exponents[name] = float(np.polyfit(np.log(budgets), np.log(kept_optima), 1)[0])
    return TransferResult(evaluator.name, tune_budget, tuple(rows), exponents)


# ----------------------------------------------------------------------- for practitioners


@dataclass(frozen=True)
class RateAdvice:
    """``bound``: the rate the convex bound picks at the new budget, given the tuned rate;
    ``sqrt_rule``: the tuned rate times :math:`\\sqrt{T_0/T}`; ``bound_exponent``: the slope
    :math:`\\log(\\gamma^*_T/\\gamma^*_{T_0}) / \\log(T/T_0)` of the bound's optimum."""

    bound: float
    sqrt_rule: float
    bound_exponent: float


def rescaled_rate(
    name: str,
    tuned_lr: float,
    tune_budget: int,
    budget: int,
    steps_per_epoch: int = 1,
    **settings: Any,
) -> RateAdvice:
    r"""The rate to use at ``budget`` epochs for a schedule tuned at ``tune_budget``.

    The convex bound's optimum moves by the factor :math:`\gamma^*_T/\gamma^*_{T_0}` for the
    schedule's shape at the two budgets (shape taken at ``tuned_lr``, so absolute floors keep
    their meaning); ``bound`` applies that factor to the tuned rate, ``sqrt_rule`` the factor
    :math:`\sqrt{T_0/T}`. For a fixed-shape schedule the two nearly agree; a schedule that
    lowers its own average rate as the budget grows (H, EH with a fixed :math:`U`) needs less.
    """
    tuned_lr = _positive("tuned_lr", tuned_lr)
    tune_budget, budget = _count("tune_budget", tune_budget), _count("budget", budget)
    if name.endswith(SQRT_RULE):
        raise ValueError(f"name must be a schedule, not a rule, got {name!r}")
    optima = []
    for b in (tune_budget, budget):
        rates = schedule_lrs(name, b, steps_per_epoch, base_lr=tuned_lr, **settings)
        if name == "SF":
            optima.append(1.0 / math.sqrt(rates.size))
        else:
            optima.append(convex_optimum(rates / tuned_lr).rate)
    factor = optima[1] / optima[0]
    exponent = math.log(factor) / math.log(budget / tune_budget) if budget != tune_budget else 0.0
    return RateAdvice(tuned_lr * factor, tuned_lr * math.sqrt(tune_budget / budget), exponent)
