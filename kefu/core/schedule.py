"""Training schedules shared by every fine-tuning loop: warmup + linear decay, and a time budget.

The budget shortens the schedule (the learning-rate decay follows the new end)
rather than cutting training off mid-decay. Work outside the steps that the budget
covers as well (before the first step, or foreseen after the last) is taken off
it with `TimeBudget.spend`. `TimeBudget.refit` is called every
few steps from the full plan, so a machine that gets busy half-way still ends
on time and one that frees up gets steps back. `KEFU_TIME_BUDGETS=off` turns every
budget off, for runs that must give the same model on any machine (`make test`).
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from kefu.core import runtime

logger = logging.getLogger(__name__)


def lr_factor(step: int, total: int, warmup_ratio: float) -> float:
    """Linear warmup over `warmup_ratio` of `total` steps, then linear decay to 0."""
    warmup = max(1, int(total * warmup_ratio))
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


class TimeBudget:
    """How many of `planned` optimiser steps fit in `minutes` (None: no budget)."""

    def __init__(self, planned: int, minutes: Optional[float], what: str, margin: float = 1.1, every: int = 20,
                 first: Optional[int] = None):
        self.planned = planned
        self.total = planned
        if minutes and not runtime.time_budgets():
            logger.info("Time budget of %.1f min for %s is off (KEFU_TIME_BUDGETS=off): all %d planned steps", minutes, what, planned)
            minutes = None
        self.seconds = minutes * 60 if minutes else None
        self.minutes = minutes
        self.what = what
        # Slack for validation passes and batch-length variance.
        self.margin = margin
        self.every = every
        # The first check (a slow step costs more when steps are few and long, e.g. contrastive batches).
        self.first = first or every
        self.started = time.perf_counter()
        self._warned = False

    def spend(self, seconds: float) -> None:
        """Takes `seconds` of work outside the steps off the budget (never below nothing left)."""
        if self.seconds is not None:
            self.seconds = max(0.0, self.seconds - max(0.0, seconds))

    def refit(self, done: int) -> int:
        """The step count to plan for after `done` steps; call after each step (cheap off the check steps)."""
        if self.seconds is None or done < self.first or (done != self.first and done % self.every):
            return self.total
        elapsed = time.perf_counter() - self.started
        per_step = elapsed / done * self.margin
        affordable = done + int(max(0.0, self.seconds - elapsed) / per_step)
        fitted = max(done, min(self.planned, affordable))
        if fitted < self.planned and not self._warned and abs(fitted - self.total) > 0.05 * self.planned:
            logger.warning("Time budget of %.1f min for %s (%.1f min for its steps): planning %d of %d steps (%.2f s/step)",
                           self.minutes, self.what, self.seconds / 60, fitted, self.planned, per_step)
            self._warned = True
        self.total = fitted
        return fitted
