"""The candidate loop's stopping rules, against a real Optuna study in a journal file."""

from __future__ import annotations

import itertools
import time

import optuna
import pytest

from tasks.errors import SearchError
from tasks.metrics import METRICS
from tasks.portfolio import initial_points
from tasks.search import SearchLimits, run_search
from tasks.study import open_study
from tasks.trial import Candidate, TrialResult

AUC = METRICS["AUC_weighted"]
LOG_LOSS = METRICS["log_loss"]
FAMILIES = ["lightgbm", "random_forest", "knn"]


def study(tmp_path, maximize=True):
    return open_study(name="s", workdir=tmp_path, maximize=maximize, seed=3, families=FAMILIES)


def scripted(scores):
    """An evaluator whose scores follow a script: the loop, not the models, is under test."""
    feed = iter(scores)

    def evaluate(batch: list[Candidate]) -> list[TrialResult]:
        out = []
        for c in batch:
            score = next(feed)
            if score is None:
                out.append(TrialResult(c, False, error="ValueError: boom"))
            else:
                out.append(TrialResult(c, True, {AUC.name: score, LOG_LOSS.name: 1 - score}))
        return out

    return evaluate


def limits(**overrides):
    values = {"iterations": 50, "deadline": lambda: time.monotonic() + 60, "patience": None}
    return SearchLimits(**{**values, **overrides})


def test_iteration_limit_and_defaults_come_first(tmp_path):
    s = study(tmp_path)
    outcome = run_search(s, FAMILIES, AUC, limits(iterations=7), scripted(itertools.count(0.5, 0.01)),
                         lambda r: None)
    assert len(outcome.results) == 7 == len(s.trials)
    # The portfolio, then each family's defaults, are tried first, in order (tests/test_portfolio).
    first = initial_points(FAMILIES)[:4]
    assert [(r.candidate.family, r.candidate.params) for r in outcome.results[:4]] == first
    assert outcome.results[0].candidate.params["num_leaves"] == 31
    assert outcome.stop_reason == "iteration limit (7) reached"


def test_early_stopping_counts_trials_without_improvement(tmp_path):
    scores = [0.6, 0.7, 0.65, 0.64, 0.69, 0.66, 0.9]
    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(patience=4), scripted(scores),
                         lambda r: None)
    assert len(outcome.results) == 6 and outcome.best.metrics[AUC.name] == 0.7
    assert outcome.stop_reason == "early stopping: 4 trials without improvement"


def test_exit_score_respects_the_metric_direction(tmp_path):
    # log loss: lower is better, so 0.3 is reached by a trial scoring 0.25, not by 0.35.
    scores = [0.65, 0.75, 0.8, 0.9]  # log_loss = 1 - score: 0.35, 0.25, 0.2, 0.1
    outcome = run_search(study(tmp_path, maximize=False), FAMILIES, LOG_LOSS,
                         limits(exit_score=0.3), scripted(scores), lambda r: None)
    assert len(outcome.results) == 2
    assert outcome.stop_reason.startswith("exit score 0.3 reached")


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    s = study(tmp_path)
    recorded = []
    outcome = run_search(s, FAMILIES, AUC, limits(iterations=4), scripted([None, 0.7, None, 0.6]),
                         lambda r: recorded.append(r) or f"run-{len(recorded)}")
    states = [t.state for t in s.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 2
    assert s.trials[0].user_attrs["error"] == "ValueError: boom"
    assert s.trials[1].user_attrs["mlflow_run_id"] == "run-2"
    assert len(recorded) == 4 and outcome.best.metrics[AUC.name] == 0.7


def test_all_trials_failing_is_a_clear_error(tmp_path):
    with pytest.raises(SearchError, match=r"all 3 trials failed, so no model was registered; first error: ValueError: boom"):
        run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=3), scripted([None] * 3),
                   lambda r: None)


def test_batches_are_asked_together(tmp_path):
    sizes = []

    def evaluate(batch):
        sizes.append(len(batch))
        return scripted([0.5] * len(batch))(batch)

    run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=7, batch_size=3), evaluate,
               lambda r: None)
    assert sizes == [3, 3, 1]


def test_time_budget_stops_before_a_new_batch(tmp_path):
    end = time.monotonic() + 0.3

    def slow(batch):
        time.sleep(0.1)
        return scripted([0.5] * len(batch))(batch)

    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(deadline=lambda: end), slow,
                         lambda r: None)
    assert 2 <= len(outcome.results) <= 4
    assert outcome.stop_reason == "time budget used"
