"""Inference cost: each trial's one-row predict time (tasks.search.evaluate), the final model's
cost (tasks.final.cost) and max_predict_ms_per_row in the choice (tasks.final.ensemble), on real
trials of credit_g."""

from __future__ import annotations

import logging
import pickle

import pytest
from trials import Run, by_metric, candidate, run_trials

from tasks.final.cost import BATCH_ROWS, measure_cost
from tasks.final.ensemble import final_choice
from tasks.metrics import METRICS
from tasks.models.pipeline import build_pipeline

METRIC = METRICS["AUC_weighted"]


@pytest.fixture(scope="module")
def credit() -> Run:
    # A slow forest and quick linear and boosted models: one-row times an order apart.
    return run_trials("credit_g", "class", "classification", [
        candidate(0, "logistic_regression"),
        candidate(1, "random_forest", n_estimators=300),
        candidate(2, "lightgbm"),
        candidate(3, "extra_trees", n_estimators=300),
    ])


def test_every_ok_trial_has_its_one_row_time(credit):
    for r in credit.results:
        # featurizing and predicting one row: more than a microsecond, well under a second
        assert r.predict_ms_per_row is not None and 0.001 < r.predict_ms_per_row < 1000, r


def _choose(run: Run, limit: float | None):
    return final_choice(by_metric(run, "AUC_weighted"), run.data, METRIC, rounds=15,
                        enabled=True, max_ms_per_row=limit)


def test_a_limit_between_the_fastest_and_slowest_trial_is_respected(credit):
    times = sorted(r.predict_ms_per_row for r in credit.results)
    limit = (times[0] + times[-1]) / 2
    chosen = _choose(credit, limit)
    assert all(m.predict_ms_per_row <= limit for m in chosen.members), chosen.label
    # an ensemble's members all predict each row: their times add up
    assert sum(m.predict_ms_per_row for m in chosen.members) <= limit
    slow = [r for r in credit.results if r.predict_ms_per_row > limit]
    assert slow and not set(map(id, slow)) & set(map(id, chosen.members))


def test_no_limit_may_choose_the_slow_trials(credit):
    # The limit is what keeps the forests out: without it they are in the running.
    best = by_metric(credit, "AUC_weighted")[0]
    chosen = _choose(credit, None)
    assert best in chosen.members


def test_when_no_trial_meets_the_limit_the_fastest_is_chosen_and_logged(credit, caplog):
    fastest = min(credit.results, key=lambda r: r.predict_ms_per_row)
    with caplog.at_level(logging.WARNING, logger="automl"):
        chosen = _choose(credit, fastest.predict_ms_per_row / 10)
    assert chosen.members == (fastest,)
    assert f"so the fastest, {fastest.candidate.label}" in caplog.text


def test_the_final_models_cost_is_measured_on_raw_rows(credit):
    data = credit.data
    model = build_pipeline("lightgbm", candidate(0, "lightgbm").params, task=data.task,
                           roles=credit.roles, seed=0, n_jobs=1, n_classes=2,
                           n_rows=len(data.X))
    model.fit(data.X, data.y)
    cost = measure_cost(model, data.X, data.classes, n_jobs=1)
    assert cost.model_bytes == len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    assert 0 < cost.predict_ms_per_row < 1000 and 0 < cost.predict_ms_per_1k_rows < 10_000
    # a batch shares the per-call overhead: 1,000 rows cost far less than 1,000 single calls
    assert cost.predict_ms_per_1k_rows < BATCH_ROWS * cost.predict_ms_per_row
