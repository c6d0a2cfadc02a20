"""flows.run.Budget: the search stops early enough to refit the best model within the budget."""

from __future__ import annotations

import time

import pytest

from flows.run import REGISTER_SECONDS, Budget
from tasks.trial import Candidate, TrialResult


def best(fit_seconds: float) -> TrialResult:
    return TrialResult(Candidate(0, "lightgbm", {}), True, {"AUC_weighted": 0.8},
                       fit_seconds=fit_seconds)


@pytest.fixture
def budget() -> Budget:
    return Budget(minutes=1, started=time.monotonic())


def test_without_a_model_the_fixed_reserve_holds(budget):
    assert budget.search_deadline == pytest.approx(budget.end - 6)  # 10% of a minute
    assert budget.deadline_after(None, n_folds=5) == budget.search_deadline


def test_a_slow_best_model_moves_the_deadline_earlier(budget):
    # 40 s over 5 folds of 80% of the rows: about 10 s to refit on all of them.
    assert budget.deadline_after(best(40), n_folds=5) == pytest.approx(
        budget.end - 1.5 * 10 - REGISTER_SECONDS)
    # A holdout trial fitted once on 90% of the rows.
    assert budget.deadline_after(best(9), n_folds=1) == pytest.approx(
        budget.end - 1.5 * 10 - REGISTER_SECONDS)


def test_a_fast_best_model_keeps_the_fixed_reserve(budget):
    assert budget.deadline_after(best(0.5), n_folds=5) == budget.search_deadline
