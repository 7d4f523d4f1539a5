r"""Warmup-stable-decay (WSD), the budget-agnostic schedule common in large-model training."""

from __future__ import annotations

from collections.abc import Sequence

from torch.optim import Optimizer

from .schedulers import ChainableScheduler, _lr_value, check_initial_lrs, per_group_infima
from .schedules import _is_int

__all__ = ["WarmupStableDecayLR"]


class WarmupStableDecayLR(ChainableScheduler):
    r"""Linear warmup, a long constant plateau, then a short linear decay to ``infimum_lr``.

    After :math:`n` calls to :meth:`step`, a param group with initial lr :math:`\eta_0` holds

    .. math::

        \eta(n) = \begin{cases}
            \eta_{inf} + (\eta_0 - \eta_{inf})\, n / W & n < W \\
            \eta_0 & W \le n < N - D \\
            \eta_0 - (\eta_0 - \eta_{inf})\,(n - N + D) / D & N - D \le n \le N \\
            \eta_{inf} & n > N
        \end{cases}

    where :math:`N` is ``total_steps``, :math:`W` is ``warmup_steps``, :math:`D` is
    ``decay_steps`` and :math:`\eta_{inf}` is ``infimum_lr``. Only the decay phase knows the
    budget: a run can be extended by moving the start of the decay, which is why this schedule is
    used when the budget is not known in advance. ``step()`` is chainable (see
    :class:`hyperlr.schedulers.ChainableScheduler`); with the default ``infimum_lr=0`` the first
    warmup factor and the end of the decay are 0, so chain it with ``infimum_lr > 0``.

    Args:
        optimizer: the wrapped optimizer; each param group decays from its own lr.
        total_steps: :math:`N`, at least 1.
        warmup_steps: :math:`W \ge 0`.
        decay_steps: :math:`D \ge 1`, with :math:`W + D \le N`.
        infimum_lr: :math:`\eta_{inf}`, one float or one per param group, ``>= 0`` and below
            each group's lr.
        last_epoch: the index of the last step, ``-1`` to start a new run.

    Example:
        >>> # xdoctest: +SKIP
        >>> scheduler = WarmupStableDecayLR(optimizer, total_steps=100, warmup_steps=10,
        ...                                 decay_steps=20)
        >>> for epoch in range(100):
        ...     train(...)
        ...     scheduler.step()
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int,
        decay_steps: int,
        infimum_lr: float | Sequence[float] = 0.0,
        last_epoch: int = -1,
    ) -> None:
        # Everything is validated before LRScheduler.__init__ touches the optimizer.
        check_initial_lrs(optimizer)
        if not _is_int(total_steps) or total_steps < 1:
            raise ValueError(f"total_steps must be an integer >= 1, got {total_steps!r}")
        if not _is_int(warmup_steps) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if not _is_int(decay_steps) or decay_steps < 1:
            raise ValueError(f"decay_steps must be an integer >= 1, got {decay_steps!r}")
        if warmup_steps + decay_steps > total_steps:
            raise ValueError(
                f"warmup_steps + decay_steps must be <= total_steps ({total_steps}), "
                f"got warmup_steps={warmup_steps!r}, decay_steps={decay_steps!r}"
            )
        self.infimum_lrs = per_group_infima(optimizer, infimum_lr, exponential=False)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        super().__init__(optimizer, last_epoch)
        self._record_constructed_lrs()

    def _fraction(self, n: int) -> float:
        """Where every group's lr sits between its infimum (0) and its initial lr (1)."""
        n = max(n, 0)
        if n < self.warmup_steps:
            return n / self.warmup_steps
        decay_start = self.total_steps - self.decay_steps
        if n < decay_start:
            return 1.0
        return max(0.0, 1.0 - (n - decay_start) / self.decay_steps)

    def _closed_form_at(self, step: int) -> list[float]:
        fraction = self._fraction(step)
        return [
            infimum + (_lr_value(base_lr) - infimum) * fraction
            for base_lr, infimum in zip(self.base_lrs, self.infimum_lrs, strict=True)
        ]

    def _settings(self) -> dict[str, object]:
        infima: float | list[float] = self.infimum_lrs
        if len(set(self.infimum_lrs)) == 1:
            infima = self.infimum_lrs[0]
        return {
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "infimum_lr": infima,
        }
