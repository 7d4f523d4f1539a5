r"""HyperbolicLR and ExpHyperbolicLR as PyTorch learning-rate schedulers.

Drop-in replacements for the authors' classes (same keywords and defaults), built as genuine
:class:`torch.optim.lr_scheduler.LRScheduler` subclasses: every param group decays from its own
initial lr, the state can be saved and restored mid-run, the lr holds its final value past the
budget instead of raising a math domain error, and the optional warmup starts at the infimum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from .schedules import (
    ValueFunction,
    check_budget,
    check_infimum,
    exp_hyperbolic_value,
    hyperbolic_value,
    schedule_position,
)

__all__ = ["ExpHyperbolicLR", "HyperbolicLR"]


def _initial_lr(group: dict) -> float:
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


class _HyperbolicScheduler(LRScheduler):
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

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lr of every param group at ``last_epoch``, in closed form from its initial lr."""
        in_warmup, position = schedule_position(
            self.last_epoch, self.max_iter, self.upper_bound, self.warmup_epochs
        )
        value: ValueFunction = self._value
        return [
            value(float(base_lr), infimum, in_warmup, position)
            for base_lr, infimum in zip(self.base_lrs, self.infimum_lrs, strict=True)
        ]

    # The closed form is what LRScheduler.step(epoch) and SequentialLR (when this scheduler
    # starts a phase) look for; get_lr already is one.
    _get_closed_form_lr = get_lr


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
        The lr is computed in closed form from each group's initial lr, not by multiplying the
        current lr. It therefore composes with :class:`~torch.optim.lr_scheduler.SequentialLR`
        (as any phase) and restores exactly from :meth:`state_dict`; but inside a
        :class:`~torch.optim.lr_scheduler.ChainedScheduler` it overwrites whatever the schedulers
        before it set on each step, and a multiplicative scheduler after it (say
        :class:`~torch.optim.lr_scheduler.ExponentialLR`) only scales that step's value by one
        factor, which does not accumulate. Chain it only with schedulers that set values
        it should override, or use :class:`~torch.optim.lr_scheduler.SequentialLR`.
    """

    _value = staticmethod(hyperbolic_value)
    _exponential = False


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
