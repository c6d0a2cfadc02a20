"""tasks.final.thresholds: a decision threshold on the positive class's probability, searched on
the chosen model's validation probabilities where a binary metric reads labels, kept only when
it improves the metric by MIN_GAIN; the refit model's predict applies it, inside the pickled
pipeline, and the evaluation reads labels at it."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from support import load
from trials import Run, by_metric, candidate, run_trials

from tasks.data.sets import HeldOut, SearchData
from tasks.final.choice import Choice
from tasks.final.ensemble import final_choice, stack_ensemble
from tasks.final.evaluation import HeldOutPredictions, evaluate_model
from tasks.final.refit import refit_model
from tasks.final.thresholds import MIN_GAIN, search_threshold, tune_threshold
from tasks.metrics import METRICS, score_all
from tasks.registry.promotion import CHAMPION, score_champion
from tasks.registry.tracking import Tracker
from tasks.search.candidates import Candidate, TrialResult, TrialSettings


def _calibrated(rows: int, a: float, b: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the positive class drawn from Beta(a, b), labels drawn from them: the
    probabilities are calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=rows)
    return np.column_stack([1 - p, p]), (rng.random(rows) < p).astype(int)


# For calibrated probabilities the best thresholds are known: accuracy's is 0.5; balanced
# accuracy's is the prevalence (label positive where p/prevalence > (1-p)/(1-prevalence));
# F1's is half the best F1 (Lipton et al. 2014, "Thresholding classifiers to maximize F1").
def test_the_search_finds_the_known_best_thresholds():
    proba, y = _calibrated(40_000, 1.0, 3.0)  # prevalence 0.25
    t, score = search_threshold(proba, y, METRICS["accuracy"])
    assert t == pytest.approx(0.5, abs=0.03)
    t, score = search_threshold(proba, y, METRICS["balanced_accuracy"])
    assert t == pytest.approx(y.mean(), abs=0.03)
    assert score == pytest.approx(skm.balanced_accuracy_score(y, proba[:, 1] >= t))
    t, score = search_threshold(proba, y, METRICS["f1_score_binary"])
    assert t == pytest.approx(score / 2, abs=0.03)


def test_the_search_weighs_rows_and_reads_the_positive_class():
    proba, y = _calibrated(40_000, 2.0, 2.0, seed=1)
    # Positive rows weigh 3: weighted accuracy labels positive where 3p > 1 - p, i.e. p > 1/4.
    t, _ = search_threshold(proba, y, METRICS["accuracy"], np.where(y == 1, 3.0, 1.0))
    assert t == pytest.approx(0.25, abs=0.03)
    # The same rows with class 0 as the positive one: the threshold is on its probability.
    t0, _ = search_threshold(proba, y, METRICS["accuracy"], np.where(y == 1, 3.0, 1.0), positive=0)
    assert t0 == pytest.approx(0.75, abs=0.03)


def test_metrics_read_labels_at_the_threshold_and_probabilities_as_they_are():
    proba, y = _calibrated(2_000, 1.0, 3.0)
    at = score_all("classification", y, proba, threshold=0.3)
    plain = score_all("classification", y, proba)
    labels = (proba[:, 1] >= 0.3).astype(int)
    assert at["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert at["f1_score_binary"] == pytest.approx(skm.f1_score(y, labels))
    assert at["accuracy"] != plain["accuracy"]
    for name in ("AUC_weighted", "log_loss", "average_precision_score_weighted"):
        assert at[name] == plain[name]


def _synthetic(
    proba: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> tuple[Choice, SearchData]:
    """A one-member choice whose validation predictions are proba, on a table whose rows are
    all validation rows."""
    rows = np.arange(len(y))
    classes = np.array(["no", "yes"])
    data = SearchData(pd.DataFrame({"x": proba[:, 1]}), classes[y], weights, ((rows, rows),),
                      rows, "cv", "classification", classes, 1.0, positive=1)
    metrics = score_all("classification", y, proba, weights)
    trial = TrialResult(Candidate(0, "lightgbm", {}), True, metrics, proba)
    return Choice((trial,), (1.0,), metrics), data


def test_a_threshold_that_improves_the_metric_is_kept_with_the_metrics_at_it():
    choice, data = _synthetic(*_calibrated(4_000, 1.0, 3.0))
    tuned = tune_threshold(choice, data, METRICS["balanced_accuracy"])
    assert tuned.threshold is not None and tuned.threshold < 0.5
    gain = tuned.metrics["balanced_accuracy"] - choice.metrics["balanced_accuracy"]
    assert gain >= MIN_GAIN
    expected = score_all("classification", data.y_valid, choice.predictions,
                         threshold=tuned.threshold)
    assert tuned.metrics == pytest.approx(expected)
    assert tuned.metrics["AUC_weighted"] == choice.metrics["AUC_weighted"]


def test_no_threshold_where_the_most_likely_class_is_already_best():
    p = np.linspace(0.0005, 0.9995, 1_000)
    proba, y = np.column_stack([1 - p, p]), (p > 0.5).astype(int)  # argmax is always right
    choice, data = _synthetic(proba, y)
    assert tune_threshold(choice, data, METRICS["accuracy"]) is choice


def test_no_threshold_for_a_gain_below_the_minimum():
    p = np.linspace(0.0005, 0.9995, 2_000)
    proba = np.column_stack([1 - p, p])
    # The rows from 0.5 to the next candidate (the 51% quantile) are negative, all others as
    # argmax labels them: that candidate gains the band's share of the weight, MIN_GAIN / 2.
    band = (p > 0.5) & (p < np.quantile(p, 0.51))
    y = ((p > 0.5) & ~band).astype(int)
    share = MIN_GAIN / 2
    weights = np.where(band, share * (~band).sum() / ((1 - share) * band.sum()), 1.0)
    choice, data = _synthetic(proba, y, weights)
    metric = METRICS["accuracy"]
    _, after = search_threshold(proba, data.y_valid, metric, weights, window=1)
    assert after - choice.metrics["accuracy"] == pytest.approx(share)
    assert tune_threshold(choice, data, metric) is choice


@pytest.mark.parametrize("name", ["AUC_weighted", "log_loss", "recall_score_binary"])
def test_metrics_a_threshold_does_not_serve_are_left_alone(name):
    choice, data = _synthetic(*_calibrated(4_000, 1.0, 3.0))
    assert tune_threshold(choice, data, METRICS[name]).threshold is None


@pytest.fixture(scope="module")
def blood() -> tuple[Run, pd.DataFrame]:
    """Trials on 80% of an imbalanced table (24% positive), the rest held out."""
    frame = load("blood_transfusion")
    train, test = train_test_split(frame, test_size=0.2, random_state=0,
                                   stratify=frame["donated_march_2007"])
    return run_trials("blood_transfusion", "donated_march_2007", "classification", [
        candidate(0, "logistic_regression"), candidate(1, "lightgbm"),
        candidate(2, "random_forest", n_estimators=50),
    ], frame=train.reset_index(drop=True)), test


@pytest.fixture(scope="module")
def tuned(blood) -> tuple[Run, pd.DataFrame, Choice]:
    run, test = blood
    metric = METRICS["balanced_accuracy"]
    choice = final_choice(by_metric(run, metric.name), run.data, metric, rounds=10, enabled=False)
    assert choice.threshold is not None and choice.threshold < 0.5
    return run, test, choice


def _stack(run: Run, choice: Choice) -> Choice:
    stacked = stack_ensemble(by_metric(run, "balanced_accuracy"), run.data, seed=0)
    assert stacked is not None
    return replace(stacked, threshold=choice.threshold)


@pytest.mark.parametrize("kind", ["single", "stack"])
def test_the_pickled_model_predicts_at_the_threshold(tuned, kind):
    run, test, choice = tuned
    choice = _stack(run, choice) if kind == "stack" else choice
    settings = TrialSettings(roles=run.roles, seed=0, n_jobs=1)
    model = pickle.loads(pickle.dumps(refit_model(choice, run.data, settings)))
    rows = test.drop(columns="donated_march_2007")
    proba = model.predict_proba(rows)
    labels = model.predict(rows)
    assert model.classes_.tolist() == [0, 1]
    assert np.array_equal(labels, (proba[:, 1] >= choice.threshold).astype(int))
    between = (proba[:, 1] >= choice.threshold) & (proba[:, 1] < 0.5)
    assert between.any()  # rows where the threshold and the most likely class disagree
    assert np.all(labels[between] == 1) and np.all(np.argmax(proba[between], axis=1) == 0)
    plain = refit_model(replace(choice, threshold=None), run.data, settings)
    assert np.allclose(plain.predict_proba(rows), proba)


def test_the_evaluation_reads_labels_as_the_model_predicts_them(tuned):
    run, test, choice = tuned
    settings = TrialSettings(roles=run.roles, seed=0, n_jobs=1)
    model = refit_model(choice, run.data, settings)
    X, y = test.drop(columns="donated_march_2007"), test["donated_march_2007"].to_numpy()
    evaluation = evaluate_model(model, choice, run.data, HeldOut(X, y, None))
    assert evaluation.validation["balanced_accuracy"] == choice.metrics["balanced_accuracy"]
    assert evaluation.test is not None
    predicted = model.predict(X)
    assert evaluation.test["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, predicted))
    assert evaluation.test["f1_score_binary"] == pytest.approx(skm.f1_score(y, predicted))
    held = evaluation.held_out
    assert held is not None and np.array_equal(held.classes[held.predicted], predicted)


def test_a_champion_is_scored_at_its_own_threshold(tuned, tmp_path):
    run, test, choice = tuned
    model = refit_model(choice, run.data, TrialSettings(roles=run.roles, seed=0, n_jobs=1))
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "blood", tmp_path / "artifacts")
    run_id = tracker.start("champion", {}, {})
    X, y = test.drop(columns="donated_march_2007"), test["donated_march_2007"].to_numpy()
    registered = tracker.register(run_id, model, X.head(5), "blood")
    tracker.set_alias("blood", CHAMPION, registered.version)
    classes = np.array([0, 1])
    held = HeldOutPredictions("test", X, np.searchsorted(classes, y), np.zeros((len(y), 2)), None,
                              classes, 1.0, 1)
    scored = score_champion(tracker, "blood", held, METRICS["balanced_accuracy"], digest=None)
    assert scored is not None
    assert scored.score == pytest.approx(skm.balanced_accuracy_score(y, model.predict(X)))
    at_argmax = skm.balanced_accuracy_score(y, np.argmax(model.predict_proba(X), axis=1))
    assert scored.score != pytest.approx(at_argmax)
