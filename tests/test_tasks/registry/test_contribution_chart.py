"""The contributions chart of a run (tasks.registry.contribution_chart): drawn from a real model's
explanation of held-out rows, logged with contributions.json, and fewer rows or none when the
explanation would not fit its time."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from test_tasks.registry.test_charts import PNG, classification, trace

from tasks.explain import explain
from tasks.features.preprocess import required_columns
from tasks.metrics import get_metric
from tasks.registry.charts import draw_charts
from tasks.registry.contribution_chart import PROBE_ROWS, ROWS, _rows, contribution_chart

# Timing-sensitive: runs alone, after the parallel tests (make test).
pytestmark = pytest.mark.serial

NAME = "contributions.png"


def test_the_chart_and_its_means_are_the_model_s_raw_columns_explained(tmp_path):
    held, model = classification()  # 400 credit_g rows, a logistic pipeline: exact, fast
    metric = get_metric("AUC_weighted", "classification")
    charts = draw_charts(tmp_path, held, model, metric, trace(metric.name, [0.7, 0.8]))
    assert NAME in charts.drawn, charts.skipped
    assert (tmp_path / NAME).read_bytes()[:8] == PNG
    assert charts.drawn[NAME] == "Contributions by column across rows, test data"
    summary = charts.contributions
    assert summary is not None
    # Fast and exact: past the probe's rows, all ROWS of them unless the machine is loaded.
    assert PROBE_ROWS < summary["rows"] <= ROWS and summary["basis"] == "test"
    # Every raw column the model reads, strongest first, as a direct explanation of those rows.
    rows = _rows(held, seed=0).iloc[:summary["rows"]]
    direct = explain(model, rows)
    assert (summary["explained_output"], summary["method"]) == (direct.output_name,
                                                                direct.method)
    means = summary["mean_abs_contribution"]
    assert sorted(means) == sorted(required_columns(model)) == sorted(held.X.columns)
    assert list(means.values()) == sorted(means.values(), reverse=True)
    expected = direct.contributions.abs().mean()
    np.testing.assert_allclose([means[c] for c in expected.index], expected.to_numpy(),
                               rtol=1e-9, atol=1e-12)
    assert charts.timings[NAME] < 30


def test_the_run_logs_the_chart_and_contributions_json(tmp_path):
    from types import SimpleNamespace

    from tasks.budget import Budget
    from tasks.final.choice import Choice
    from tasks.final.evaluation import Evaluation
    from tasks.registry.publish import report_run
    from tasks.registry.tracking import Tracker

    held, model = classification()
    metric = get_metric("AUC_weighted", "classification")
    outcome = trace(metric.name, [0.7, 0.75])
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "charts", tmp_path / "artifacts")
    run = SimpleNamespace(tracker=tracker, run_id=tracker.start("r", {}, {}))
    evaluation = Evaluation({metric.name: 0.75}, None, held)
    choice = Choice((outcome.best,), (1.0,), {metric.name: 0.75})
    charts = report_run(run, model, choice, outcome, evaluation, metric, Budget(5, time.monotonic()))
    assert NAME in charts.drawn, charts.skipped
    logged = {a.path for a in tracker.client.list_artifacts(run.run_id, "charts")}
    assert f"charts/{NAME}" in logged
    local = tracker.client.download_artifacts(run.run_id, "contributions.json", str(tmp_path))
    with open(local) as handle:
        assert json.load(handle) == charts.contributions
    assert set(charts.contributions["mean_abs_contribution"]) == set(required_columns(model))


class _SlowSampled:
    """A real model no exact method knows (so it is sampled), at a fixed cost per row predicted,
    as an ensemble of featurizing pipelines costs."""

    def __init__(self, model, seconds_per_row: float) -> None:
        self.model, self.seconds = model, seconds_per_row
        self.classes_, self.feature_names_in_ = model.classes_, model.feature_names_in_
        self.estimators_ = [model]  # required_columns reads the columns through it

    def predict_proba(self, X):
        time.sleep(self.seconds * len(X))
        return self.model.predict_proba(X)


def test_a_slow_sampled_model_explains_fewer_rows_in_its_aim(tmp_path):
    held, model = classification()
    slow = _SlowSampled(model, 2e-5)  # 20 rows: 42,000 model rows, about 1 s
    figure, summary = contribution_chart(held, slow, seed=0, aim=1.0)
    assert summary.method == "sampled" and summary.rows == PROBE_ROWS < ROWS
    assert set(summary.mean_abs_contribution) == set(held.X.columns)
    assert summary.seconds < 10
    figure.savefig(tmp_path / NAME)


def test_no_contributions_when_the_budget_has_no_time_for_them(tmp_path):
    held, model = classification()
    metric = get_metric("AUC_weighted", "classification")
    slow = _SlowSampled(model, 2e-5)
    charts = draw_charts(tmp_path, held, slow, metric, trace(metric.name, [0.7, 0.8]),
                         importance_seconds=0.5, importance_limit=0.5)
    reason = charts.skipped[NAME]
    assert reason.startswith("TimeoutError: explaining 20 rows could take about")
    assert reason.endswith("more than the 0.5 s the time budget leaves it")
    assert charts.contributions is None and not (tmp_path / NAME).exists()
    assert charts.timings[NAME] < 0.5  # one model call decided it, not the explanation
    assert {"roc.png", "confusion_matrix.png"} <= set(charts.drawn)


@pytest.mark.parametrize("seed", [0, 3])
def test_rows_are_drawn_with_the_seed_in_their_order(seed):
    held, _ = classification()
    rows = _rows(held, seed)
    assert len(rows) == ROWS and rows.index.tolist() == list(range(ROWS))
    assert rows.equals(_rows(held, seed))
