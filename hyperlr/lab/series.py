r"""Time series for the sequence-forecasting chapter: the paper's oscillator and a real series.

The paper's task forecasts a damped harmonic oscillator, :math:`m\ddot x + c\dot x + kx = 0`
with :math:`c = 2\zeta\sqrt{km}`, integrated with the Newmark-beta method (average constant
acceleration, :math:`\gamma = 1/2`, :math:`\beta = 1/4`). Windows of ``history`` past samples
predict the next ``horizon`` samples of the min-max normalised position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .splits import TrainValTensors, check_subset_size

__all__ = [
    "SeriesData",
    "damped_oscillator",
    "oscillator_windows",
    "sunspots",
    "sunspots_windows",
    "window_dataset",
]


def damped_oscillator(
    zeta: float,
    m: float = 1.0,
    k: float = 200.0,
    x0: float = 0.1,
    v0: float = 0.0,
    dt: float = 1e-3,
    t_max: float = 10.0,
) -> pd.DataFrame:
    r"""Integrate the oscillator :math:`m\ddot x + c\dot x + kx = 0` with Newmark-beta.

    Average constant acceleration (:math:`\gamma = 1/2`, :math:`\beta = 1/4`): each step solves
    the equation of motion at :math:`t_{n+1}` for the new acceleration, with

    .. math::

        x_{n+1} &= x_n + \Delta t\, v_n
                   + \Delta t^2 \left[(\tfrac12 - \beta) a_n + \beta a_{n+1}\right] \\
        v_{n+1} &= v_n + \Delta t \left[(1 - \gamma) a_n + \gamma a_{n+1}\right]

    The scheme is unconditionally stable and, without damping, conserves the energy exactly; its
    only error is a small lengthening of the period, about :math:`(\omega\Delta t)^2/12`.

    Args:
        zeta: damping ratio :math:`\zeta \ge 0` (the paper uses 0, 0.01 and 0.02).
        m: mass, > 0.
        k: spring constant, > 0.
        x0, v0: initial position and velocity; :math:`a_0 = -(c v_0 + k x_0)/m` follows.
        dt: time step, > 0.
        t_max: end time, > 0; the series has ``round(t_max / dt) + 1`` samples.

    Returns:
        A DataFrame with columns ``t``, ``x``, ``v``, ``a`` (10,001 rows with the defaults).
    """
    for name, value in {"m": m, "k": k, "dt": dt, "t_max": t_max}.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for name, value in {"zeta": zeta, "x0": x0, "v0": v0}.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if zeta < 0:
        raise ValueError(f"zeta must be >= 0, got {zeta!r}")
    steps = round(t_max / dt)
    gamma, beta = 0.5, 0.25
    c = 2.0 * zeta * math.sqrt(k * m)
    effective_mass = m + gamma * dt * c + beta * dt * dt * k

    x = np.empty(steps + 1)
    v = np.empty(steps + 1)
    a = np.empty(steps + 1)
    x[0], v[0] = x0, v0
    a[0] = -(c * v0 + k * x0) / m
    for n in range(steps):
        # Predictors: the parts of x_{n+1} and v_{n+1} that do not involve a_{n+1}.
        x_pred = x[n] + dt * v[n] + dt * dt * (0.5 - beta) * a[n]
        v_pred = v[n] + dt * (1.0 - gamma) * a[n]
        a[n + 1] = -(c * v_pred + k * x_pred) / effective_mass
        x[n + 1] = x_pred + beta * dt * dt * a[n + 1]
        v[n + 1] = v_pred + gamma * dt * a[n + 1]
    return pd.DataFrame({"t": np.arange(steps + 1) * dt, "x": x, "v": v, "a": a})


def sunspots() -> pd.Series:
    """Yearly mean sunspot numbers 1700-2008, as shipped inside the statsmodels wheel."""
    from statsmodels.datasets import sunspots as statsmodels_sunspots

    data = statsmodels_sunspots.load_pandas().data
    return pd.Series(
        data["SUNACTIVITY"].to_numpy(dtype=float),
        index=data["YEAR"].astype(int),
        name="sunspots",
    )


@dataclass(frozen=True, eq=False)
class SeriesData(TrainValTensors):
    """Windows of a min-max normalised series: ``x`` (n, history, 1) predicts ``y`` (n, horizon, 1).

    The counterpart of :class:`hyperlr.lab.data.ImageData` for the forecasting task: the trainer
    uses the same attributes (``name``, ``source``, ``n_train``, ``n_val``, ``device``,
    ``augment``, :meth:`to`).
    """

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    minimum: float
    maximum: float
    augment: bool = False

    @property
    def n_features(self) -> int:
        """Values per time step."""
        return self.x_train.shape[2]

    @property
    def horizon(self) -> int:
        """Time steps predicted."""
        return self.y_train.shape[1]

    def denormalise(self, values: torch.Tensor | np.ndarray):
        """Map normalised values back to the series' own units."""
        return values * (self.maximum - self.minimum) + self.minimum


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def window_dataset(
    values: np.ndarray,
    *,
    name: str,
    source: str,
    history: int,
    horizon: int,
    val_fraction: float = 0.2,
    seed: int = 0,
    stride: int = 1,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> SeriesData:
    """Cut a 1-D series into (history, horizon) windows and split them at random.

    The series is min-max normalised to [0, 1] first. Windows start every ``stride`` samples.
    A seeded random ``val_fraction`` of them goes to validation, as in the paper; then
    ``train_subset`` / ``val_subset`` keep seeded random subsets of each side (for
    reduced-scale runs), so a subset never mixes training and validation windows.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise ValueError("values must be a finite 1-D series")
    _check_positive_int("history", history)
    _check_positive_int("horizon", horizon)
    _check_positive_int("stride", stride)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    span = history + horizon
    if len(values) < span + 1:
        raise ValueError(
            f"history + horizon ({span}) must be shorter than the series ({len(values)} samples)"
        )
    minimum, maximum = float(values.min()), float(values.max())
    normalised = (values - minimum) / (maximum - minimum)
    starts = np.arange(0, len(values) - span + 1, stride)
    windows = np.lib.stride_tricks.sliding_window_view(normalised, span)[starts]

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(windows))
    n_val = max(1, round(val_fraction * len(order)))
    val_index, train_index = order[:n_val], order[n_val:]
    check_subset_size("train_subset", train_subset, len(train_index))
    check_subset_size("val_subset", val_subset, len(val_index))
    # The permutation is already random: a subset is its first entries, kept in time order.
    train_index = np.sort(train_index[:train_subset])
    val_index = np.sort(val_index[:val_subset])

    def split(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = torch.tensor(windows[index], dtype=torch.float32).unsqueeze(-1)
        return chosen[:, :history].contiguous(), chosen[:, history:].contiguous()

    x_train, y_train = split(train_index)
    x_val, y_val = split(val_index)
    return SeriesData(name, source, x_train, y_train, x_val, y_val, minimum, maximum)


def oscillator_windows(
    *,
    zeta: float = 0.0,
    history: int = 50,
    horizon: int = 50,
    stride: int = 1,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> SeriesData:
    """The paper's oscillator data set: windows of the position of :func:`damped_oscillator`.

    The defaults are the paper's: undamped, 50 steps of history predict the next 50, every
    window of the 10,001 samples (9,902), 80/20 random split.
    """
    series = damped_oscillator(zeta)
    return window_dataset(
        series["x"].to_numpy(),
        name="oscillator",
        source=f"Newmark-beta integration, zeta={zeta}, dt=1e-3, t in [0, 10]",
        history=history,
        horizon=horizon,
        stride=stride,
        seed=seed,
        train_subset=train_subset,
        val_subset=val_subset,
    )


def sunspots_windows(
    *,
    history: int = 24,
    horizon: int = 12,
    stride: int = 1,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> SeriesData:
    """Yearly sunspot numbers in windows: ``history`` years predict the next ``horizon``."""
    return window_dataset(
        sunspots().to_numpy(),
        name="sunspots",
        source="statsmodels.datasets.sunspots (yearly, 1700-2008)",
        history=history,
        horizon=horizon,
        stride=stride,
        seed=seed,
        train_subset=train_subset,
        val_subset=val_subset,
    )
