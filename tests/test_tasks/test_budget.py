"""tasks.budget: the clock, the reserve, the refit plan and the fold count, from the command's
start to its exit."""

from __future__ import annotations

import time

import pytest

from tasks.budget import (
    FIRST_MODEL_SECONDS,
    MAX_STARTUP_FRACTION,
    MIN_BUDGET_SECONDS,
    REFIT_MARGIN,
    REGISTER_SECONDS,
    SAVE_SECONDS_PER_MB,
    SHUTDOWN_SECONDS,
    Budget,
    budget_folds,
    check_budget,
    refit_seconds,
    reserve_seconds,
    smallest_budget,
)
from tasks.errors import ConfigError
from tasks.search.candidates import Candidate, TrialResult


def best(fit_seconds: float, number: int = 0) -> TrialResult:
    return TrialResult(Candidate(number, "lightgbm", {}), True, {"AUC_weighted": 0.8},
                       fit_seconds=fit_seconds)


@pytest.fixture
def budget() -> Budget:
    return Budget(minutes=1, started=time.monotonic())


# ---------------------------------------------------------------- the clock


def test_without_a_start_time_the_clock_starts_now():
    assert Budget.start(1.0).started == pytest.approx(time.monotonic(), abs=0.05)


def test_the_time_since_the_command_started_is_counted():
    started = Budget.start(1.0, time.time() - 12.0).started
    assert time.monotonic() - started == pytest.approx(12.0, abs=0.1)


def test_start_up_counts_at_most_half_the_budget():
    # A budget shorter than the start-up still leaves time for the first trials.
    started = Budget.start(1.0, time.time() - 100.0).started
    assert time.monotonic() - started == pytest.approx(MAX_STARTUP_FRACTION * 60, abs=0.1)


def test_a_start_time_in_the_future_counts_nothing():
    assert Budget.start(1.0, time.time() + 50.0).started == pytest.approx(time.monotonic(),
                                                                          abs=0.05)


def test_the_shutdown_allowance_ends_the_flow_s_budget_early():
    budget = Budget(1.0, started=100.0, shutdown=SHUTDOWN_SECONDS)
    assert budget.end == 160.0 - SHUTDOWN_SECONDS < Budget(1.0, started=100.0).end


# ---------------------------------------------------------------- the reserve and the refit


def test_the_reserve_is_five_seconds_or_a_tenth():
    assert reserve_seconds(20) == 5.0 and reserve_seconds(600) == 60.0


def test_without_a_model_trials_start_until_one_could_still_be_registered(budget):
    assert budget.search_deadline == pytest.approx(budget.end - 6)  # 10% of a minute
    assert budget.deadline_after([], n_folds=5) == pytest.approx(budget.end - FIRST_MODEL_SECONDS)
    # Once a model exists, the reserve holds again.
    assert budget.deadline_after([best(0.1)], n_folds=5) == pytest.approx(budget.search_deadline)


def test_a_budget_below_the_floor_is_refused_naming_the_smallest_that_works():
    with pytest.raises(ConfigError, match=r"5 s is too short.*smallest budget that works is 15 s"):
        check_budget(5 / 60)
    check_budget(MIN_BUDGET_SECONDS / 60)
    # A table where one default trial takes minutes needs more than the floor.
    with pytest.raises(ConfigError, match=r"on 2,000,000 rows; the smallest budget that works is"):
        check_budget(1, n_rows=2_000_000, work_per_row=100)
    assert smallest_budget(2_000_000, 100) > 60 > smallest_budget(5_000, 20)


def test_until_a_model_exists_trials_may_run_to_the_end_less_registration(budget):
    assert budget.trials_stop([], n_folds=5) == pytest.approx(budget.end - REGISTER_SECONDS)
    assert budget.trials_stop([best(40)], 5) == budget.deadline_after([best(40)], 5)


def test_a_slow_best_model_moves_the_deadline_earlier(budget):
    # 40 s over 5 folds of 80% of the rows: about 10 s to refit on all of them.
    assert budget.deadline_after([best(40)], n_folds=5) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)
    # A holdout trial fitted once on 90% of the rows.
    assert budget.deadline_after([best(9)], n_folds=1) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)


def test_the_search_ends_in_time_for_the_ensemble_step_too(budget):
    # A 40 s best trial needs 10 s of refit; a 4 s ensemble step comes before it.
    planned = budget.planning(ensemble=4.0)
    assert planned.deadline_after([best(40)], n_folds=5) == pytest.approx(
        budget.deadline_after([best(40)], n_folds=5) - 4.0)
    # A fast model and a short step stay within the fixed reserve; none yet: the first model
    # may still start.
    assert budget.planning(ensemble=1.0).deadline_after([best(0.5)], 5) == budget.search_deadline
    assert planned.deadline_after([best(0.5)], n_folds=5) < budget.search_deadline
    assert planned.deadline_after([], n_folds=5) == budget.deadline_after([], n_folds=5)


def test_the_ensemble_step_is_estimated_from_the_stack_s_work():
    from tasks.final.stacking import BLEND_SECONDS, MAX_META_WORK, ensemble_seconds

    # Multiclass: the meta-learner's columns and its outputs grow with the classes.
    assert ensemble_seconds(6_000, 7) > 2 * ensemble_seconds(6_000, 2) > 0
    assert ensemble_seconds(60_000, 2) > ensemble_seconds(6_000, 2)
    # Past MAX_META_WORK the stack is not tried: only the blend is left.
    assert 20_000 * 5 * 26 * 26 > MAX_META_WORK
    assert ensemble_seconds(20_000, 26) == BLEND_SECONDS


def test_a_fast_best_model_keeps_the_fixed_reserve(budget):
    assert budget.deadline_after([best(0.5)], n_folds=5) == budget.search_deadline


def test_the_leaders_refit_side_by_side_on_the_cores(budget, monkeypatch):
    monkeypatch.setattr("tasks.budget.available_cores", lambda: 2)
    leaders = [best(40, 0), best(20, 1), best(20, 2)]  # 10 + 5 + 5 s to refit, on 2 cores
    assert budget.deadline_after(leaders, n_folds=5) == pytest.approx(
        budget.end - REFIT_MARGIN * 10 - REGISTER_SECONDS)
    assert refit_seconds([best(8, 0), best(8, 1), best(8, 2)], n_folds=5) == pytest.approx(3.0)


def test_affords_an_ensemble_only_while_its_refit_fits(monkeypatch):
    monkeypatch.setattr("tasks.budget.available_cores", lambda: 1)
    budget = Budget(minutes=1, started=time.monotonic() - 40)  # 20 s left
    affords = budget.affords(n_folds=5)
    assert affords([best(8, 0), best(8, 1)])  # 4 s of refit: 1.25 x 4 + 3 < 20
    assert not affords([best(60, 0), best(8, 1)])  # 17 s: 1.25 x 17 + 3 > 20


def test_the_members_the_search_planned_for_stay_affordable_a_moment_past_its_deadline(
        monkeypatch):
    # The search stopped in time to refit its two leaders; it ends a moment later than planned
    # (its last trials stopped, the workers closed): those two, or any set costing no more,
    # may still be refit, and nothing costlier.
    monkeypatch.setattr("tasks.budget.available_cores", lambda: 1)
    leaders = [best(20, 0), best(20, 1)]  # 10 s of refit: 1.25 x 10 + 3 = 15.5 s to finish
    budget = Budget(minutes=1, started=time.monotonic() - 46)  # 14 s left: not enough
    assert not budget.affords(n_folds=5)(leaders)
    affords = budget.affords(n_folds=5, planned=leaders)
    assert affords(leaders) and affords([best(20, 0), best(4, 2)])
    assert not affords([*leaders, best(8, 2)])


def test_a_large_model_leaves_time_to_write_it():
    budget = Budget(minutes=1, started=time.monotonic())
    small = TrialResult(Candidate(0, "extra_trees", {}), True, {"AUC_weighted": 0.8},
                        fit_seconds=40.0, model_bytes=1_000_000)
    large = TrialResult(Candidate(0, "extra_trees", {}), True, {"AUC_weighted": 0.8},
                        fit_seconds=40.0, model_bytes=500_000_000)  # 500 MB: about 5 s to write
    assert budget.deadline_after([small], 5) - budget.deadline_after([large], 5) == pytest.approx(
        SAVE_SECONDS_PER_MB * 499)


# ---------------------------------------------------------------- the charts


def test_importance_aims_at_a_twentieth_of_the_run_and_a_quarter_of_what_is_left():
    budget = Budget(minutes=1, started=time.monotonic() - 30)  # 30 s left
    aim, limit = budget.importance_seconds()
    assert aim == pytest.approx(1.5, abs=0.05)  # a twentieth of the 30 s so far
    assert limit == pytest.approx(7.5, abs=0.05)  # a quarter of the 30 s left
    late = Budget(minutes=1, started=time.monotonic() - 59.5)
    assert late.importance_seconds() == pytest.approx((1.0, 1.0))  # never below a second


# ---------------------------------------------------------------- the fold count


def test_budget_folds_step_down_from_the_default_to_three_to_a_holdout():
    def folds(minutes: float, rows: int, work_per_row: int) -> int:
        return budget_folds(5, rows, work_per_row, minutes, concurrency=2)[0]

    # A table of 5,197 rows, 13 columns, 7 classes: 5 folds at a minute, 3 at half, 1 at 15 s.
    assert folds(1, 5_197, 13 * 7) == 5
    assert folds(0.5, 5_197, 13 * 7) == 3
    assert folds(0.25, 5_197, 13 * 7) == 1
    assert folds(0.5, 500, 10) == 5  # small data: the folds are cheap


def test_fewer_folds_say_why():
    folds, why = budget_folds(5, 20_000, 16 * 26, 1.0, concurrency=2)
    assert folds == 1
    assert why.startswith("because a 5-fold trial would take about")
    assert why.endswith("the 1-minute budget should buy at least 20 trials")
    assert budget_folds(5, 500, 10, 60.0, concurrency=2) == (5, "")
