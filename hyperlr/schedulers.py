r"""HyperbolicLR and ExpHyperbolicLR as PyTorch learning-rate schedulers.

Drop-in replacements for the authors' classes (same keywords and defaults), built as genuine
:class:`torch.optim.lr_scheduler.LRScheduler` subclasses: every param group decays from its own
initial lr, the state can be saved and restored mid-run, the lr holds its final value past the
budget instead of raising a math domain error, and the optional warmup starts at the infimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from .schedules import (
    ValueFunction,
    _is_int,
    check_budget,
    check_infimum,
    exp_hyperbolic_value,
    hyperbolic_value,
    schedule_position,
)

__all__ = ["ExpHyperbolicLR", "HyperbolicLR"]


def _initial_lr(group: dict[str, Any]) -> float:
    # The lr this scheduler will decay from: LRScheduler keeps an existing "initial_lr" (set by
    # an earlier scheduler on the same optimizer, as in SequentialLR) and otherwise takes "lr".
    lr = group.get("initial_lr", group["lr"])
    return float(lr.item() if isinstance(lr, Tensor) else lr)


def check_initial_lrs(optimizer: object) -> None:
    """Check that ``optimizer`` is an optimizer whose every param group decays from a finite
    positive lr: a NaN, infinite, zero or negative lr would make every scheduled lr NaN or
    meaningless.

    Raises:
        TypeError: ``optimizer`` is not a :class:`torch.optim.Optimizer` (a list of parameters,
            say).
        ValueError: naming the param group's lr and its value.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer (e.g. torch.optim.AdamW(params)), "
            f"got {type(optimizer).__name__}"
        )
    for index, group in enumerate(optimizer.param_groups):
        lr = _initial_lr(group)
        if not (math.isfinite(lr) and lr > 0):
            name = "initial_lr" if "initial_lr" in group else "lr"
            raise ValueError(
                f"optimizer.param_groups[{index}][{name!r}] must be a finite number > 0, got {lr!r}"
            )


def per_group_infima(
    optimizer: Optimizer, infimum_lr: float | Sequence[float], *, exponential: bool
) -> list[float]:
    """One validated infimum per param group, from a single float or a list of them (the
    optimizer and its lrs are checked first, see :func:`check_initial_lrs`)."""
    check_initial_lrs(optimizer)
    groups = optimizer.param_groups
    if isinstance(infimum_lr, (list, tuple)):
        if len(infimum_lr) != len(groups):
            raise ValueError(
                f"infimum_lr has {len(infimum_lr)} values but the optimizer has "
                f"{len(groups)} param groups; give one value per group or a single float"
            )
        infima = list(infimum_lr)
    else:
        infima = [infimum_lr] * len(groups)
    for index, (group, infimum) in enumerate(zip(groups, infima, strict=True)):
        check_infimum(
            infimum, _initial_lr(group), exponential=exponential, where=f" (param group {index})"
        )
    return [float(infimum) for infimum in infima]


def _lr_value(lr: float | Tensor) -> float:
    return float(lr.item() if isinstance(lr, Tensor) else lr)


class ChainableScheduler(LRScheduler):
    r"""What every hyperlr scheduler shares: a closed form, and a chainable ``get_lr``.

    A subclass gives :meth:`_closed_form_at`, the lr of every param group after ``n`` steps when
    nothing else touches it. With :math:`f_n = \eta(n) / \eta_{init}` the schedule's factor,

    * :meth:`_get_closed_form_lr` returns :math:`\eta_{init} f_n` (what ``step(epoch)`` and
      :class:`~torch.optim.lr_scheduler.SequentialLR` at a milestone use);
    * :meth:`get_lr` (what ``step()`` uses) multiplies the group's current lr by
      :math:`f_n / f_{n-1}` (by :math:`f_0` at ``n = 0``), as PyTorch's own chainable
      schedulers do, so inside a :class:`~torch.optim.lr_scheduler.ChainedScheduler` the lr is
      the product of every scheduler's factor. When the group's lr still is this schedule's
      :math:`\eta_{init} f_{n-1}` (nothing else scales it), the ratio gives
      :math:`\eta_{init} f_n`, which is returned exactly (no rounding drift over long runs).

    A factor of zero (a warmup from ``infimum_lr=0``, or WSD's decay to 0) erases every other
    factor: the next step then continues from this scheduler's closed form when the group's lr
    is still 0, and raises :class:`ValueError` when something else has set a non-zero lr meanwhile
    (no ratio can carry that lr on).
    """

    base_lrs: list[float | Tensor]
    # (step, closed form at that step) of the last get_lr call
    _closed_form_cache: tuple[int, list[float]] | None = None

    def _closed_form_at(self, step: int) -> list[float]:
        raise NotImplementedError

    def step(self, epoch: int | None = None) -> None:
        """Advance one step, or (deprecated by PyTorch) jump to step ``epoch >= 0``.

        Raises:
            ValueError: ``epoch`` is not an integer >= 0.
        """
        if epoch is not None and (not _is_int(epoch) or epoch < 0):
            raise ValueError(f"epoch must be None or an integer >= 0, got {epoch!r}")
        super().step(epoch)

    def _get_closed_form_lr(self) -> list[float]:
        """The lr of every param group at ``last_epoch``, in closed form from its initial lr."""
        return self._closed_form_at(max(self.last_epoch, 0))

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """Every group's current lr times this schedule's factor ratio :math:`f_n / f_{n-1}`."""
        step = self.last_epoch if self.last_epoch > 0 else 0
        now = self._closed_form_at(step)
        # The closed form at the previous step is the one computed by the previous call (kept
        # with its step, so that a jump by step(epoch) or load_state_dict recomputes it).
        cached = self._closed_form_cache
        if step == 0:
            before = [_lr_value(base_lr) for base_lr in self.base_lrs]
        elif cached is not None and cached[0] == step - 1:
            before = cached[1]
        else:
            before = self._closed_form_at(step - 1)
        self._closed_form_cache = (step, now)
        current = [group["lr"] for group in self.optimizer.param_groups]
        if current == before:  # (a tensor lr compares by value)
            return now  # nothing else scaled the groups: exactly the closed form
        lrs = [lr if type(lr) is float else _lr_value(lr) for lr in current]
        result = list(now)
        for index, (lr, value, previous) in enumerate(zip(lrs, now, before, strict=True)):
            if lr == previous:
                continue
            if value == 0.0:
                result[index] = 0.0  # a zero factor makes the product zero
            elif previous != 0.0:
                result[index] = lr * (value / previous)
            elif lr == 0.0:
                result[index] = value
            else:
                raise ValueError(
                    f"{type(self).__name__} cannot chain param group {index}: its previous "
                    f"factor was 0 (a warmup or decay reaching infimum_lr=0) but the group's lr "
                    f"is now {lr!r}, so no ratio continues it; give infimum_lr > 0 or use "
                    f"SequentialLR"
                )
        return result

    def _record_constructed_lrs(self) -> None:
        # The lrs this construction left on the optimizer: load_state_dict replaces them by the
        # restored ones, so that building the scheduler after optimizer.load_state_dict (which
        # applies the step-0 factor once more) resumes at the right lr.
        self._constructed_lrs = [_lr_value(group["lr"]) for group in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the state, and the optimizer's lrs when this scheduler's construction set them.

        Works in either order: the order PyTorch documents (build the scheduler, then
        ``optimizer.load_state_dict`` and ``scheduler.load_state_dict``) keeps the optimizer's
        restored lrs; building the scheduler after ``optimizer.load_state_dict`` leaves the
        step-0 lr on the groups, which this replaces by the saved last lr.
        """
        constructed = self.__dict__.get("_constructed_lrs")
        super().load_state_dict(state_dict)
        if constructed is None:
            return
        self._constructed_lrs = constructed
        for group, lr, built in zip(
            self.optimizer.param_groups, self._last_lr, constructed, strict=True
        ):
            if _lr_value(group["lr"]) == built:
                _set_lr(group, lr)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={value!r}" for name, value in self._settings().items())
        return f"{type(self).__name__}({settings}, last_epoch={self.last_epoch})"

    def _settings(self) -> dict[str, object]:
        raise NotImplementedError


def _set_lr(group: dict[str, Any], lr: float | Tensor) -> None:
    current = group["lr"]
    if isinstance(current, Tensor):
        current.fill_(_lr_value(lr))
    else:
        group["lr"] = _lr_value(lr)


class _HyperbolicScheduler(ChainableScheduler):
    """The machinery both schedules share; subclasses pick the value function."""

    _value: staticmethod[[float, float, bool, float], float]
    _exponential: bool

    def __init__(
        self,
        optimizer: Optimizer,
        upper_bound: float = 1000,
        max_iter: int = 100,
        infimum_lr: float | Sequence[float] = 1e-6,
        warmup_epochs: int = 0,
        last_epoch: int = -1,
    ) -> None:
        # Everything is validated before LRScheduler.__init__ touches the optimizer, so a bad
        # argument leaves the optimizer exactly as it was.
        check_initial_lrs(optimizer)
        check_budget(max_iter, upper_bound, warmup_epochs)
        self.infimum_lrs = per_group_infima(optimizer, infimum_lr, exponential=self._exponential)
        self.upper_bound = float(upper_bound)
        self.max_iter = int(max_iter)
        self.warmup_epochs = int(warmup_epochs)
        super().__init__(optimizer, last_epoch)
        self._record_constructed_lrs()

    def _closed_form_at(self, step: int) -> list[float]:
        in_warmup, position = schedule_position(
            step, self.max_iter, self.upper_bound, self.warmup_epochs
        )
        value: ValueFunction = self._value
        return [
            value(
                base_lr if type(base_lr) is float else _lr_value(base_lr),
                infimum,
                in_warmup,
                position,
            )
            for base_lr, infimum in zip(self.base_lrs, self.infimum_lrs, strict=True)
        ]

    def _settings(self) -> dict[str, object]:
        infima: float | list[float] = self.infimum_lrs
        if len(set(self.infimum_lrs)) == 1:
            infima = self.infimum_lrs[0]
        return {
            "upper_bound": self.upper_bound,
            "max_iter": self.max_iter,
            "infimum_lr": infima,
            "warmup_epochs": self.warmup_epochs,
        }


class HyperbolicLR(_HyperbolicScheduler):
    r"""Decays each param group's lr along a hyperbola whose asymptote ignores the budget.

    After :math:`n` calls to :meth:`step` (``n = 0`` right after construction), a param group with
    initial lr :math:`\eta_{init}` holds

    .. math::

        \eta(n) = \eta_{init} + (\eta_{init} - \eta_{inf})\,[h(n) - h(0)],
        \qquad h(n) = \frac{1}{U}\sqrt{(N - n)(2U - N - n)}

    where:

    * :math:`N` is ``max_iter``, the budget in scheduler steps (epochs or optimizer steps);
    * :math:`U \ge N` is ``upper_bound``; all budgets with the same :math:`U` share the
      asymptote :math:`1 - n/U`, so their early learning rates barely differ;
    * :math:`\eta_{inf}` is ``infimum_lr``, the infimum of :math:`\eta(N)` over all budgets
      :math:`N \le U` (reached only when :math:`N = U`).

    With ``warmup_epochs = W > 0`` the lr first rises linearly,
    :math:`\eta(n) = \eta_{inf} + (\eta_{init} - \eta_{inf})\,n/W` for :math:`n < W` (so the
    first step trains at :math:`\eta_{inf}`), then follows the formula above with :math:`n - W`
    steps taken out of a budget of :math:`N - W`. Past the budget (:math:`n > N`) the lr stays at
    :math:`\eta(N)`.

    Args:
        optimizer: the wrapped optimizer. Each param group decays from its own lr (a tensor lr
            works too).
        upper_bound: :math:`U`, at least ``max_iter``. Default: 1000.
        max_iter: :math:`N`, the number of scheduler steps in the run, at least 1. Default: 100.
        infimum_lr: :math:`\eta_{inf}`, one float for all groups or one per group; ``>= 0`` and
            below each group's lr. Default: 1e-6.
        warmup_epochs: :math:`W`, the length of the linear warmup, in ``[0, max_iter)``.
            Default: 0.
        last_epoch: the index of the last step, ``-1`` to start a new run. Default: -1.

    Raises:
        ValueError: naming the argument and its value, before the optimizer is touched.

    Example (one ``step()`` per epoch, as in the paper):
        >>> # xdoctest: +SKIP
        >>> scheduler = HyperbolicLR(optimizer, upper_bound=250, max_iter=100, infimum_lr=1e-6)
        >>> for epoch in range(100):
        >>>     train(...)
        >>>     validate(...)
        >>>     scheduler.step()

    Example (one ``step()`` per optimizer step; the budget counts optimizer steps):
        >>> # xdoctest: +SKIP
        >>> total = epochs * len(loader)
        >>> scheduler = HyperbolicLR(optimizer, upper_bound=int(1.25 * total), max_iter=total)
        >>> for epoch in range(epochs):
        >>>     for batch in loader:
        >>>         loss_fn(model(batch)).backward()
        >>>         optimizer.step()
        >>>         optimizer.zero_grad()
        >>>         scheduler.step()

    .. note::
        ``step()`` is chainable as PyTorch's own schedulers are: it multiplies each group's
        current lr by the schedule's ratio :math:`\eta(n)/\eta(n-1)`, so in a
        :class:`~torch.optim.lr_scheduler.ChainedScheduler` (in either order, with
        :class:`~torch.optim.lr_scheduler.LinearLR` as a warmup, say) the lr is the product of
        the factors. Alone, or as a phase of :class:`~torch.optim.lr_scheduler.SequentialLR`,
        the lr is exactly the closed form above. With ``infimum_lr=0`` and a warmup the first
        factor is 0, which erases the other schedulers' factors (see
        :class:`ChainableScheduler`); chain with ``infimum_lr > 0``.
    """

    _value = staticmethod(hyperbolic_value)
    _exponential = False

    def __init__(
        self,
        optimizer: Optimizer,
        upper_bound: float = 1000,
        max_iter: int = 100,
        infimum_lr: float | Sequence[float] = 1e-6,
        warmup_epochs: int = 0,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer, upper_bound, max_iter, infimum_lr, warmup_epochs, last_epoch)


class ExpHyperbolicLR(_HyperbolicScheduler):
    r"""Decays each param group's lr along a hyperbola in :math:`\log \eta`.

    After :math:`n` calls to :meth:`step`, a param group with initial lr :math:`\eta_{init}`
    holds

    .. math::

        \eta(n) = \eta_{init}\,\left(\frac{\eta_{init}}{\eta_{inf}}\right)^{h(n) - h(0)},
        \qquad h(n) = \frac{1}{U}\sqrt{(N - n)(2U - N - n)}

    where :math:`N` is ``max_iter``, :math:`U \ge N` is ``upper_bound`` and
    :math:`\eta_{inf} > 0` is ``infimum_lr``. The decay is geometric: the lr falls by the same
    factor in equal stretches of the hyperbola, which suits rates spanning several decades. At the
    end of the budget :math:`\eta(N) = \eta_{init}^{1-h(0)}\,\eta_{inf}^{h(0)}`, which reaches
    :math:`\eta_{inf}` only when :math:`N = U`.

    Arguments, warmup (linear, from :math:`\eta_{inf}`), behaviour past the budget, the two
    training loops and the note on ``ChainedScheduler`` are those of :class:`HyperbolicLR`, except
    that ``infimum_lr`` must be strictly positive.

    Example:
        >>> # xdoctest: +SKIP
        >>> scheduler = ExpHyperbolicLR(optimizer, upper_bound=250, max_iter=100, infimum_lr=1e-6)
        >>> for epoch in range(100):
        >>>     train(...)
        >>>     scheduler.step()
    """

    _value = staticmethod(exp_hyperbolic_value)
    _exponential = True

    def __init__(
        self,
        optimizer: Optimizer,
        upper_bound: float = 1000,
        max_iter: int = 100,
        infimum_lr: float | Sequence[float] = 1e-6,
        warmup_epochs: int = 0,
        last_epoch: int = -1,
    ) -> None:
        super().__init__(optimizer, upper_bound, max_iter, infimum_lr, warmup_epochs, last_epoch)
