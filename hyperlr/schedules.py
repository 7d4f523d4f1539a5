r"""The hyperbolic schedules as plain functions, and the one implementation they share.

The paper (Kim, arXiv:2407.15200) builds both schedules on the hyperbola

.. math::

    h(n; N, U) = \frac{1}{U}\sqrt{(N - n)(2U - N - n)}, \qquad 0 \le n \le N \le U,

whose asymptote :math:`h = 1 - n/U` does not depend on the budget :math:`N`:

.. math::

    \eta_H(n) &= \eta_{init} + (\eta_{init} - \eta_{inf})\,[h(n) - h(0)] \\
    \eta_{EH}(n) &= \eta_{init}\,(\eta_{init} / \eta_{inf})^{h(n) - h(0)}

The scalar functions in this module (pure Python, ``math`` only) are what
:class:`hyperlr.HyperbolicLR` and :class:`hyperlr.ExpHyperbolicLR` call on every ``step()``; the
public array functions :func:`hyperbolic_lr` and :func:`exp_hyperbolic_lr` evaluate exactly the
same scalar code element-wise, so a plot and a training run can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import TypeGuard

import numpy as np
from numpy.typing import ArrayLike

sqrt = math.sqrt

__all__ = ["exp_hyperbolic_lr", "hyperbola", "hyperbolic_lr"]


# --------------------------------------------------------------------------------------------
# Validation shared by the functions and the schedulers
# --------------------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check_finite_number(name: str, value: object) -> float:
    # A 0-d tensor or numpy array (say an lr read back from a tensor) counts as its number.
    item = getattr(value, "item", None)
    if getattr(value, "ndim", None) == 0 and callable(item):
        value = item()
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_budget(max_iter: object, upper_bound: object, warmup_epochs: object) -> None:
    """Validate the budget arguments shared by both schedules.

    Raises:
        ValueError: naming the argument and its value, when ``max_iter`` is not an integer
            >= 1, ``upper_bound`` is not a finite number >= ``max_iter``, or ``warmup_epochs``
            is not an integer in ``[0, max_iter)``.
    """
    if not _is_int(max_iter) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    upper = _check_finite_number("upper_bound", upper_bound)
    if upper < max_iter:
        raise ValueError(
            f"upper_bound must be >= max_iter ({max_iter}), got upper_bound={upper_bound!r}"
        )
    if not _is_int(warmup_epochs) or not 0 <= warmup_epochs < max_iter:
        raise ValueError(
            f"warmup_epochs must be an integer in [0, max_iter) = [0, {max_iter}), "
            f"got {warmup_epochs!r}"
        )


def check_infimum(
    infimum_lr: object, init_lr: float, *, exponential: bool, where: str = ""
) -> None:
    """Validate one infimum against the initial lr it belongs to.

    ``where`` names the param group in the message (e.g. ``" for param group 1"``).
    """
    infimum = _check_finite_number("infimum_lr", infimum_lr)
    if exponential and infimum <= 0:
        raise ValueError(
            f"infimum_lr must be > 0 for ExpHyperbolicLR (it schedules log(lr)), "
            f"got {infimum_lr!r}{where}"
        )
    if infimum < 0:
        raise ValueError(f"infimum_lr must be >= 0, got {infimum_lr!r}{where}")
    if infimum >= init_lr:
        raise ValueError(
            f"infimum_lr must be smaller than the initial lr ({init_lr!r}), "
            f"got infimum_lr={infimum_lr!r}{where}"
        )


# --------------------------------------------------------------------------------------------
# The scalar implementation (used per step by the schedulers)
# --------------------------------------------------------------------------------------------


def hyperbola(n: float, max_iter: float, upper_bound: float) -> float:
    r"""The paper's hyperbola :math:`h(n; N, U) = \sqrt{(N-n)(2U-N-n)}/U` on its arc ``n <= N``.

    The schedules use ``0 <= n <= N``; the arc continues smoothly to ``n < 0``.

    Raises:
        ValueError: for ``n > N``: the radicand is negative for ``N < n < 2U - N``, and beyond
            that the formula gives the hyperbola's other branch, not this arc.
    """
    if n > max_iter:
        raise ValueError(f"n must be <= max_iter ({max_iter}) on the schedule's arc, got {n!r}")
    return math.sqrt((max_iter - n) * (2.0 * upper_bound - max_iter - n)) / upper_bound


def schedule_position(
    step: int, max_iter: int, upper_bound: float, warmup_epochs: int
) -> tuple[bool, float]:
    r"""Where ``step`` lies on the schedule, shared by every param group.

    Returns ``(True, n / W)`` during the linear warmup (``n < W``), otherwise ``(False, d)`` with
    :math:`d = h(m; N - W, U) - h(0; N - W, U) \in [-h(0), 0]` and :math:`m = \min(n, N) - W`:
    the warmup steps are taken out of the budget, and past the budget the schedule holds its
    final value instead of leaving the hyperbola's domain.
    """
    # This runs on every step(): conditional expressions instead of min()/max(), and h(taken) -
    # h(0) written out rather than through hyperbola(), keep it within 1.2x of cosine's get_lr.
    if step < 0:  # before the first step: the schedule's start
        step = 0
    if step < warmup_epochs:
        return True, step / warmup_epochs
    budget = max_iter - warmup_epochs
    taken = (step if step < max_iter else max_iter) - warmup_epochs
    if taken < 0:  # only for a negative step without warmup
        taken = 0
    span = upper_bound + upper_bound - budget
    return False, (sqrt((budget - taken) * (span - taken)) - sqrt(budget * span)) / upper_bound


def _warmup_value(init_lr: float, infimum_lr: float, fraction: float) -> float:
    return infimum_lr + (init_lr - infimum_lr) * fraction


def hyperbolic_value(init_lr: float, infimum_lr: float, in_warmup: bool, position: float) -> float:
    """HyperbolicLR at a :func:`schedule_position`: linear in the hyperbola."""
    if in_warmup:
        return _warmup_value(init_lr, infimum_lr, position)
    return init_lr + (init_lr - infimum_lr) * position


def exp_hyperbolic_value(
    init_lr: float, infimum_lr: float, in_warmup: bool, position: float
) -> float:
    """ExpHyperbolicLR at a :func:`schedule_position`: the hyperbola applied to ``log(lr)``."""
    if in_warmup:
        return _warmup_value(init_lr, infimum_lr, position)
    return init_lr * float((init_lr / infimum_lr) ** position)


ValueFunction = Callable[[float, float, bool, float], float]


# --------------------------------------------------------------------------------------------
# The public array functions
# --------------------------------------------------------------------------------------------


def _evaluate(
    value: ValueFunction,
    exponential: bool,
    step: ArrayLike,
    init_lr: ArrayLike,
    infimum_lr: ArrayLike,
    max_iter: int,
    upper_bound: float,
    warmup_epochs: int,
) -> np.ndarray | float:
    check_budget(max_iter, upper_bound, warmup_epochs)
    steps, inits, infima = np.broadcast_arrays(
        np.asarray(step), np.asarray(init_lr, dtype=float), np.asarray(infimum_lr, dtype=float)
    )
    if not np.issubdtype(steps.dtype, np.integer) and not np.all(np.mod(steps, 1) == 0):
        raise ValueError(f"step must hold whole numbers, got {step!r}")
    if np.any(steps < 0):
        raise ValueError(f"step must be >= 0, got {step!r}")
    for init, infimum in set(zip(inits.ravel().tolist(), infima.ravel().tolist(), strict=True)):
        _check_finite_number("init_lr", init)
        check_infimum(infimum, init, exponential=exponential)

    def one(n: int, init: float, infimum: float) -> float:
        in_warmup, position = schedule_position(int(n), max_iter, upper_bound, warmup_epochs)
        return value(float(init), float(infimum), in_warmup, position)

    result = np.vectorize(one, otypes=[float])(steps, inits, infima)
    return float(result) if result.ndim == 0 else result


def hyperbolic_lr(
    step: ArrayLike,
    init_lr: ArrayLike,
    infimum_lr: ArrayLike,
    max_iter: int,
    upper_bound: float,
    warmup_epochs: int = 0,
) -> np.ndarray | float:
    r"""HyperbolicLR's learning rate after ``step`` scheduler steps.

    .. math::

        \eta_H(n) = \eta_{init} + (\eta_{init} - \eta_{inf})\,[h(n; N, U) - h(0; N, U)]

    with a linear warmup from :math:`\eta_{inf}` to :math:`\eta_{init}` over the first ``W``
    steps when ``warmup_epochs = W > 0`` (the hyperbola then spans the remaining ``N - W``
    steps), and the final value held for ``step > max_iter``.

    Args:
        step: step index ``n >= 0`` (scalar or array; whole numbers).
        init_lr: initial learning rate :math:`\eta_{init}` (broadcasts against ``step``).
        infimum_lr: :math:`\eta_{inf}`, with ``0 <= infimum_lr < init_lr``.
        max_iter: the budget :math:`N` in steps, ``>= 1``.
        upper_bound: :math:`U >= N`.
        warmup_epochs: warmup length ``W`` in ``[0, N)``.

    Returns:
        A float for a scalar ``step``, else an array of the broadcast shape.

    Example:
        >>> round(hyperbolic_lr(100, 1e-2, 1e-6, max_iter=100, upper_bound=250), 10)
        0.0020008
    """
    return _evaluate(
        hyperbolic_value, False, step, init_lr, infimum_lr, max_iter, upper_bound, warmup_epochs
    )


def exp_hyperbolic_lr(
    step: ArrayLike,
    init_lr: ArrayLike,
    infimum_lr: ArrayLike,
    max_iter: int,
    upper_bound: float,
    warmup_epochs: int = 0,
) -> np.ndarray | float:
    r"""ExpHyperbolicLR's learning rate after ``step`` scheduler steps.

    .. math::

        \eta_{EH}(n) = \eta_{init}\,
            \left(\frac{\eta_{init}}{\eta_{inf}}\right)^{h(n; N, U) - h(0; N, U)}

    Same arguments, warmup and past-the-budget behaviour as :func:`hyperbolic_lr`, except that
    ``infimum_lr`` must be strictly positive (the schedule is the hyperbola in ``log(lr)``).

    Example:
        >>> exp_hyperbolic_lr(100, 1e-2, 1e-6, max_iter=100, upper_bound=250)  # 1e-2 * 1e-3.2
        6.30957344480193e-06
    """
    return _evaluate(
        exp_hyperbolic_value, True, step, init_lr, infimum_lr, max_iter, upper_bound, warmup_epochs
    )
