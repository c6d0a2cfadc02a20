"""flows.run.Budget: the search stops early enough to refit the best model within the budget."""

from __future__ import annotations

import time

import pytest

from flows.run import REFIT_MARGIN, REGISTER_SECONDS, SAVE_SECONDS_PER_MB, Budget, refit_seconds
from tasks.search.candidates import Candidate, TrialResult


def best(fit_seconds: float, number: int = 0) -> TrialResult:
    return TrialResult(Candidate(number, "lightgbm", {}), True, {"AUC_weighted": 0.8},
                       fit_seconds=fit_seconds)


@pytest.fixture
def budget() -> Budget:
    return Budget(minutes=1, started=time.monotonic())


def test_without_a_model_the_fixed_reserve_holds(budget):
    assert budget.search_deadline == pytest.approx(budget.end - 6)  # 10% of a minute
    assert budget.deadline_after([], n_folds=5) == budget.search_deadline


def test_a_slow_best_model_moves_the_deadline_earlier(budget):
    # 40 s over 5 folds of 80% of the rows: about 10 s to refit on all of them.
    assert budget.deadline_after([best(40)], n_folds=5) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)
    # A holdout trial fitted once on 90% of the rows.
    assert budget.deadline_after([best(9)], n_folds=1) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)


def test_a_fast_best_model_keeps_the_fixed_reserve(budget):
    assert budget.deadline_after([best(0.5)], n_folds=5) == budget.search_deadline


def test_the_leaders_refit_side_by_side_on_the_cores(budget, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    leaders = [best(40, 0), best(20, 1), best(20, 2)]  # 10 + 5 + 5 s to refit, on 2 cores
    assert budget.deadline_after(leaders, n_folds=5) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)
    assert refit_seconds([best(8, 0), best(8, 1), best(8, 2)], n_folds=5) == pytest.approx(3.0)


def test_affords_an_ensemble_only_while_its_refit_fits(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    budget = Budget(minutes=1, started=time.monotonic() - 40)  # 20 s left
    affords = budget.affords(n_folds=5)
    assert affords([best(8, 0), best(8, 1)])  # 4 s of refit: 1.25 x 4 + 3 < 20
    assert not affords([best(60, 0), best(8, 1)])  # 17 s: 1.25 x 17 + 3 > 20


def test_the_workers_cut_off_follows_the_deadline_both_ways():
    from flows.trials import CutOff

    told: list[float] = []
    cut_off = CutOff(told.append)
    now = time.monotonic()
    cut_off.follow(now + 30)
    cut_off.follow(now + 30.5)  # a jitter under a second is not passed on
    cut_off.follow(now + 20)  # a costlier best trial: earlier
    cut_off.follow(now + 28)  # a cheaper one: later again, or new trials would stop at once
    assert [round(t - time.time()) for t in told] == [30, 20, 28]


def test_a_large_model_leaves_time_to_write_it():
    budget = Budget(minutes=1, started=time.monotonic())
    small = TrialResult(Candidate(0, "extra_trees", {}), True, {"AUC_weighted": 0.8},
                        fit_seconds=40.0, model_bytes=1_000_000)
    large = TrialResult(Candidate(0, "extra_trees", {}), True, {"AUC_weighted": 0.8},
                        fit_seconds=40.0, model_bytes=500_000_000)  # 500 MB: about 5 s to write
    assert budget.deadline_after([small], 5) - budget.deadline_after([large], 5) == pytest.approx(
        SAVE_SECONDS_PER_MB * 499)
