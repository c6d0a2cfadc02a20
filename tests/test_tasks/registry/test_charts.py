"""Charts drawn from a small real model: every file is a PNG, a chart that cannot be drawn is
skipped with its reason, and none of it raises."""

from __future__ import annotations

import numpy as np
import pytest
from support import load
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from tasks.search.outcome import SearchOutcome
from tasks.registry.charts import draw_charts
from tasks.metrics import get_metric
from tasks.final.evaluation import HeldOutPredictions
from tasks.search.candidates import Candidate, TrialResult
from tasks.models.predict import predict_scores

PNG = b"\x89PNG\r\n\x1a\n"
CLASSIFICATION = {"confusion_matrix.png", "roc.png", "precision_recall.png", "calibration.png",
                  "lift_gains.png"}
REGRESSION = {"predicted_vs_true.png", "residuals_histogram.png", "residuals_vs_predicted.png"}
BOTH = {"permutation_importance.png", "optimization_history.png", "best_so_far_time.png",
        "param_importance.png", "error_analysis.png", "contributions.png"}


def trace(metric: str, scores: list[float | None]) -> SearchOutcome:
    results = tuple(
        TrialResult(Candidate(i, "logistic_regression", {"C": 10.0 ** -i}), score is not None,
                    {metric: score} if score is not None else {}, error=None if score else "boom")
        for i, score in enumerate(scores)
    )
    return SearchOutcome(results, results[0], "test", tuple(1.5 * (i + 1) for i in range(len(scores))),
                         ("logistic_regression", "lightgbm"))


def classification(multiclass: bool = False) -> tuple[HeldOutPredictions, object]:
    frame = load("credit_g").sample(400, random_state=0)
    if multiclass:
        frame["class"] = frame["class"] + "-" + frame["housing"].astype(str)
    X, labels = frame.drop(columns=["class"]), frame["class"].to_numpy()
    categorical = X.select_dtypes(exclude="number").columns
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical),
                                remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(X, labels)
    classes = np.unique(labels)
    held = HeldOutPredictions("test", X, np.searchsorted(classes, labels),
                              predict_scores(model, X, classes), None, classes, 1.0, 1)
    return held, model


def test_classification_charts_are_pngs(tmp_path):
    held, model = classification()
    metric = get_metric("AUC_weighted", "classification")
    charts = draw_charts(tmp_path, held, model, metric, trace(metric.name, [0.7, None, 0.75, 0.72]))
    assert set(charts.drawn) == CLASSIFICATION | BOTH, charts.skipped
    for name in charts.drawn:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert list(charts.importance)[0] in held.X.columns
    assert charts.seconds < 60


def test_multiclass_curves_are_one_vs_rest(tmp_path):
    held, model = classification(multiclass=True)
    assert len(held.classes) == 6
    metric = get_metric("accuracy", "classification")
    charts = draw_charts(tmp_path, held, model, metric, trace(metric.name, [0.5, 0.6]))
    assert CLASSIFICATION <= set(charts.drawn), charts.skipped


def test_regression_charts_and_a_chart_that_cannot_be_drawn(tmp_path):
    frame = load("concrete").head(300)
    X, y = frame.drop(columns=["compressive_strength"]), frame["compressive_strength"].to_numpy()
    model = Ridge().fit(X, y)
    held = HeldOutPredictions("validation", X, y, model.predict(X), None, None,
                              float(np.ptp(y)), 1)
    metric = get_metric("r2_score", "regression")
    # One completed trial: hyperparameter importance needs two, so it is skipped, not raised.
    charts = draw_charts(tmp_path, held, model, metric, trace(metric.name, [0.6, None]))
    assert set(charts.drawn) == REGRESSION | BOTH - {"param_importance.png", "contributions.png"}
    assert "at least 2 completed trials" in charts.skipped["param_importance.png"]
    # A bare model, not a registered pipeline: no raw column to explain.
    assert "names no raw input column" in charts.skipped["contributions.png"]
    assert not (tmp_path / "param_importance.png").exists()


def test_a_broken_model_skips_importance_without_raising(tmp_path):
    held, _ = classification()
    metric = get_metric("AUC_weighted", "classification")
    charts = draw_charts(tmp_path, held, object(), metric, trace(metric.name, [0.7, 0.8]))
    assert "permutation_importance.png" in charts.skipped
    # the cohorts are of the strongest columns: none known, none cut
    assert "no permutation importance" in charts.skipped["error_analysis.png"]
    assert CLASSIFICATION <= set(charts.drawn)


def test_a_lower_is_better_metric_draws_too(tmp_path):
    held, model = classification()
    metric = get_metric("log_loss", "classification")
    charts = draw_charts(tmp_path, held, model, metric, trace(metric.name, [0.7, 0.6, 0.8]))
    assert set(charts.drawn) == CLASSIFICATION | BOTH, charts.skipped
    assert min(charts.importance.values()) > -0.5  # drops in quality, sign-corrected


class _SlowToPredict:
    """A real model that takes `seconds` per row predicted, as a slow ensemble does."""

    def __init__(self, model, seconds: float) -> None:
        self.model, self.seconds, self.classes_ = model, seconds, model.classes_

    def predict_proba(self, X):
        import time

        time.sleep(self.seconds * len(X))
        return self.model.predict_proba(X)


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_importance_that_cannot_fit_its_time_is_skipped_not_overrun(tmp_path):
    held, model = classification()
    metric = get_metric("AUC_weighted", "classification")
    # At least 200 rows, each predicted once as it is and once per column shuffled: 200 x 21
    # x 0.5 ms, 2 s.
    slow = _SlowToPredict(model, 0.0005)
    charts = draw_charts(tmp_path, held, slow, metric, trace(metric.name, [0.7, 0.8]),
                         importance_seconds=0.5, importance_limit=0.5)
    assert "would take about 2 s, more than the 0.5 s" in charts.skipped["permutation_importance.png"]
    assert charts.timings["permutation_importance.png"] < 1.0
    assert CLASSIFICATION <= set(charts.drawn)
    # The aim alone is not a limit: the chart is drawn, past it.
    unlimited = draw_charts(tmp_path / "unlimited", held, slow, metric,
                            trace(metric.name, [0.7, 0.8]), importance_seconds=0.5)
    assert "permutation_importance.png" in unlimited.drawn


def test_the_importance_is_scikit_learns(tmp_path):
    # The stacked copies measure what sklearn.inspection.permutation_importance measures: a
    # copy out of line with its rows would show drops of noise.
    from sklearn.inspection import permutation_importance

    from tasks.registry.importance import permutation_chart

    held, model = classification()
    metric = get_metric("AUC_weighted", "classification")
    _, ours = permutation_chart(held, model, metric, seed=3, aim=60.0)

    def auc(estimator, X, y):
        return metric(y, predict_scores(estimator, X, held.classes), None, held.y_range,
                      held.positive, held.threshold)

    theirs = permutation_importance(model, held.X, held.y, scoring=auc, n_repeats=10,
                                    random_state=0).importances_mean
    assert np.corrcoef([ours[c] for c in held.X.columns], theirs)[0, 1] > 0.9
    assert list(ours)[0] == held.X.columns[np.argmax(theirs)]


def test_no_chart_is_drawn_once_the_budget_is_spent(tmp_path):
    # The model is registered before the charts: with no time left they are skipped, with the
    # reason on the run, rather than pushing the command past its budget.
    import time
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
    spent = Budget(0.25, time.monotonic() - 14)  # a 15 s budget, 14 s of it gone
    charts = report_run(run, model, choice, outcome, evaluation, metric, spent)
    assert not charts.drawn and "no time left in the budget" in charts.skipped["all"]
    fresh = Budget(1, time.monotonic())
    charts = report_run(run, model, choice, outcome, evaluation, metric, fresh)
    assert "roc.png" in charts.drawn
    logged = {a.path for a in tracker.client.list_artifacts(run.run_id, "charts")}
    assert "charts/roc.png" in logged
