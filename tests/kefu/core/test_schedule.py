"""The training schedule and time budget shared by the intent classifier and the embedding adaptation."""

from __future__ import annotations

import time

import pytest

from kefu.core.errors import OptionsError
from kefu.core.schedule import TimeBudget, lr_factor


def test_warmup_then_linear_decay():
    assert lr_factor(0, 100, 0.1) == 0.1 and lr_factor(9, 100, 0.1) == 1.0
    assert lr_factor(55, 100, 0.1) == 0.5 and lr_factor(100, 100, 0.1) == 0.0


def test_budget_shortens_the_plan_to_what_fits_and_never_below_what_is_done():
    budget = TimeBudget(planned=10_000, minutes=0.5 / 60, what="test", every=10)
    budget.started = time.perf_counter() - 0.4  # 10 steps took 0.4 s: about 1 more fits in 0.5 s
    assert 10 <= budget.refit(10) < 20
    unlimited = TimeBudget(planned=500, minutes=None, what="test")
    assert unlimited.refit(20) == 500


def test_work_outside_the_steps_is_taken_off_the_budget():
    budget = TimeBudget(planned=10_000, minutes=1.0, what="test", every=10)
    budget.spend(30.0)  # e.g. the companions trained before the schedule and the passes foreseen after it
    budget.started = time.perf_counter() - 10.0  # 10 steps took 10 s: 20 more fit in the 30 s left
    assert 25 <= budget.refit(10) <= 30
    budget.spend(1_000.0)  # more than is left: nothing is, and the plan stops at what is done
    assert budget.seconds == 0.0 and budget.refit(20) == 20


def test_budgets_switched_off_keep_the_whole_plan(monkeypatch):
    monkeypatch.setenv("KEFU_TIME_BUDGETS", "off")
    budget = TimeBudget(planned=10_000, minutes=0.5 / 60, what="test", every=10)
    budget.started = time.perf_counter() - 0.4  # the same pace that fits about 11 steps with the budget on
    assert budget.seconds is None and budget.refit(10) == 10_000


def test_a_misspelt_budget_switch_is_an_error_not_a_silent_default(monkeypatch):
    monkeypatch.setenv("KEFU_TIME_BUDGETS", "no")
    with pytest.raises(OptionsError, match="KEFU_TIME_BUDGETS must be on or off"):
        TimeBudget(planned=100, minutes=1.0, what="test")
