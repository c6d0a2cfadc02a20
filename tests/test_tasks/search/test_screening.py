"""Screening on a subsample of the rows (tasks.search.screening): which tables screen, the rows a
screening job fits, the promotion rule, and the loop that runs both kinds of job; and the run's
memory limit in the loop (tasks.search.memory)."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import numpy as np
import pytest
from test_tasks.search.test_evaluate import _data, _settings
from test_tasks.search.test_loop import FAMILIES, limits, run_search, scripted, study

from tasks.errors import SearchError
from tasks.metrics import METRICS
from tasks.models.wrappers import inner_estimator
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.evaluate import _Folds, _run_fold, evaluate_candidate
from tasks.search.memory import MEMORY_WAITS, MemoryGate
from tasks.search.screening import (
    ESTIMATE_MARGIN,
    SCREEN_MIN_FIT_ROWS,
    Screening,
    screening_rows,
    screening_rungs,
)
from tasks.search.spaces import load_space

AUC = METRICS["AUC_weighted"]


def test_only_a_single_large_fold_is_screened():
    assert screening_rungs([720_000]) == (45_000,)
    assert screening_rungs([SCREEN_MIN_FIT_ROWS - 1]) == ()
    assert screening_rungs([400_000, 400_000]) == ()  # cross-validation: every trial fits all


def test_the_screening_rows_keep_the_class_shares_and_are_the_same_every_time():
    rng = np.random.default_rng(0)
    y = (rng.random(100_000) < 0.1).astype(int)
    rows = screening_rows(y, 6_250, seed=3, classification=True)
    assert len(rows) == 6_250 == len(np.unique(rows))
    assert np.all(np.diff(rows) > 0) and rows[-1] < len(y)
    assert abs(y[rows].mean() - y.mean()) < 0.002
    assert np.array_equal(rows, screening_rows(y, 6_250, seed=3, classification=True))
    assert not np.array_equal(rows, screening_rows(y, 6_250, seed=4, classification=True))


@pytest.fixture(scope="module")
def wine():
    return _data("wine_quality", "quality", "log_loss")


def test_a_screening_job_fits_its_subsample_and_is_scored_on_every_validation_row(wine):
    profile, data = wine
    settings = _settings(profile, data, stop=True)
    params = load_space("decision_tree").defaults[0]
    fitted = _run_fold(Candidate(0, "decision_tree", params, rows=500), data, settings, 0,
                       _Folds())
    tree = inner_estimator(fitted[-1], fitted=True)
    assert tree.tree_.n_node_samples[0] == 500
    full = evaluate_candidate(Candidate(1, "lightgbm", load_space("lightgbm").defaults[0]), data,
                              settings)
    screened = evaluate_candidate(
        Candidate(2, "lightgbm", load_space("lightgbm").defaults[0], rows=400), data, settings)
    assert (full.status, screened.status) == ("ok", "screened")
    assert len(screened.predictions) == len(full.predictions) == len(data.valid_rows)
    # Fewer rows, a worse model: the score is the subsample's, not a copy of the full trial's.
    assert screened.metrics["log_loss"] > full.metrics["log_loss"]


def _screened(number: int, score: float, fit_seconds: float = 1.0) -> TrialResult:
    candidate = Candidate(number, "lightgbm", {"num_leaves": number}, rows=1_000)
    return TrialResult(candidate, True, {AUC.name: score}, fit_seconds=fit_seconds)


def test_the_best_quarter_is_promoted_once_each():
    screening = Screening((1_000,), 16_000, AUC)
    far = time.monotonic() + 3_600
    for number, score in enumerate([0.70, 0.90, 0.80]):
        screening.add(_screened(number, score))
    assert screening.promotion(time.monotonic, far) is None  # fewer than ETA screened
    screening.add(_screened(3, 0.60))
    assert screening.promotion(time.monotonic, far).candidate.number == 1
    assert screening.promotion(time.monotonic, far) is None  # the best quarter is 1 of 4
    for number, score in enumerate([0.5, 0.5, 0.5, 0.85], start=4):
        screening.add(_screened(number, score))
    assert screening.promotion(time.monotonic, far).candidate.number == 7  # 2 of 8 now


def test_a_promotion_whose_estimate_does_not_fit_is_skipped_with_its_reason():
    screening = Screening((1_000,), 16_000, AUC)
    for number, score in enumerate([0.9, 0.5, 0.5, 0.5]):
        screening.add(_screened(number, score, fit_seconds=2.0))
    # 2 s on 1,000 rows: about 16 x 2 x margin on 16,000, more than the 30 s left.
    assert screening.promotion(time.monotonic, time.monotonic() + 30) is None
    assert 16 * 2.0 * ESTIMATE_MARGIN > 30
    assert screening.skipped and "not promoted to all 16,000 rows" in screening.skipped[0]
    assert "LightGBM-0" in screening.skipped[0]


def test_the_loop_screens_promotes_and_chooses_only_full_trials(tmp_path):
    scores = itertools.count(0.50, 0.01)  # every job better than the last
    outcome = run_search(study(tmp_path), FAMILIES, AUC,
                         limits(iterations=14, rungs=(1_000,), fit_rows=16_000),
                         scripted(scores), lambda r: None)
    rows = [r.candidate.rows for r in outcome.results]
    assert rows[0] is None and rows[1:5] == [1_000] * 4  # the first on all rows, then screened
    promoted = [r for r in outcome.results[1:] if r.candidate.rows is None]
    assert promoted, rows
    screened = {(r.candidate.family, tuple(sorted(r.candidate.params.items())))
                for r in outcome.results if r.candidate.rows is not None}
    for result in promoted:
        assert (result.candidate.family, tuple(sorted(result.candidate.params.items()))) in screened
    # Screening jobs scored higher than the full trials before them, yet only a full trial wins.
    assert outcome.best.candidate.rows is None
    assert all(r.candidate.rows is None for r in outcome.ranked(AUC))
    assert {r.status for r in outcome.results} == {"ok", "screened"}


class _Measured(scripted):
    """A scripted evaluator whose trials report their worker's memory: a random forest rises
    400 MB over its trial, any other family 10 MB."""

    def submit(self, c: Candidate):
        handle = super().submit(c)
        rise = 400.0 if c.family == "random_forest" else 10.0
        return self.pool.submit(lambda: replace(handle.result(), start_memory_mb=300.0,
                                                peak_memory_mb=300.0 + rise))


def test_a_trial_whose_need_does_not_fit_in_the_run_memory_limit_does_not_start(tmp_path):
    gate = MemoryGate(1_000, full_rows=100, measure=lambda: 700.0)  # 300 MB left
    outcome = run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=12, memory=gate),
                         _Measured(itertools.repeat(0.8)), lambda r: None)
    forests = [r for r in outcome.results if r.candidate.family == "random_forest"]
    ran = [r for r in forests if r.status != "skipped"]
    assert len(ran) == 1 and len(forests) > 1  # the first, before its need was known
    assert all(r.reason == "skipped" for r in forests[1:])
    assert "needs about 400 MB more" in forests[1].error and "max_memory_mb=1000" in forests[1].error
    # A family not measured yet is taken to need the most any family needed: KNN never ran.
    knn = [r for r in outcome.results if r.candidate.family == "knn"]
    assert knn and all("from other families' earlier trials" in r.error for r in knn)
    assert len(outcome.skipped) == len(forests) - 1 + len(knn)
    boosting = [r for r in outcome.results if r.candidate.family == "lightgbm"]
    assert len(boosting) > 1 and all(r.ok for r in boosting)  # 10 MB each still fits


def test_a_run_already_over_its_memory_limit_stops_searching_and_says_so(tmp_path):
    gate = MemoryGate(1_000, full_rows=100, measure=lambda: 1_200.0)
    with pytest.raises(SearchError, match="kept from starting by the memory limit"):
        run_search(study(tmp_path), FAMILIES, AUC, limits(iterations=50, memory=gate),
                   _Measured(itertools.repeat(0.8)), lambda r: None)
    assert gate.refused_in_a_row == MEMORY_WAITS


def test_the_first_configuration_and_its_twin_measure_how_time_grows_with_the_rows():
    screening = Screening((1_000,), 16_000, AUC)
    first = Candidate(0, "lightgbm", {"num_leaves": 31})
    screening.started(first)
    assert screening.growth("lightgbm") == 16  # not measured yet: the rows' ratio
    twin = screening.twin()
    assert twin.rows == 1_000 and twin.key[0] == "lightgbm" and screening.twin() is None
    screening.add(TrialResult(first, True, {AUC.name: 0.8}, fit_seconds=44.0,
                              featurize_seconds=4.0))
    screening.add(TrialResult(twin, True, {AUC.name: 0.7}, fit_seconds=9.0,
                              featurize_seconds=4.0))
    assert screening.growth("lightgbm") == pytest.approx(8.0)  # 40 s against 5 s of fitting
    assert screening.growth("random_forest") == pytest.approx(8.0 * 16**0.2)


def test_a_booster_that_its_clock_would_cut_is_not_promoted():
    screening = Screening((1_000,), 16_000, AUC, clock=60.0)
    for number, score in enumerate([0.9, 0.5, 0.5, 0.5]):
        screening.add(_screened(number, score, fit_seconds=10.0))  # 16 x 10 s on all the rows
    assert screening.promotion(time.monotonic, time.monotonic() + 3_600) is None
    assert "its fit stops at 60 s" in screening.skipped[0]
