"""tasks.final.calibration: one temperature fitted on the chosen model's validation
probabilities, kept only where the metric reads probabilities and improves; the refit model
predicts at it, inside the pickled pipeline."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from trials import Run, by_metric, candidate, run_trials

from tasks.final.calibration import calibrate, fit_temperature
from tasks.final.choice import STACK, Choice
from tasks.final.ensemble import final_choice
from tasks.final.refit import refit_model
from tasks.metrics import METRICS, score_all
from tasks.models.predict import scale_probabilities
from tasks.search.candidates import TrialSettings


def _sample(rows: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities and labels drawn from them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(rows, classes))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(classes, p=p) for p in proba])
    return proba, y


@pytest.mark.parametrize("distortion", [0.5, 2.0])
def test_the_fitted_temperature_undoes_a_known_distortion(distortion):
    proba, y = _sample(20_000, 4)
    distorted = scale_probabilities(proba, distortion)  # over- (0.5) or under-confident (2.0)
    t = fit_temperature(distorted, y)
    assert t == pytest.approx(1 / distortion, rel=0.1)
    assert np.allclose(scale_probabilities(distorted, t), proba, atol=0.02)


def test_scaling_keeps_rows_summing_to_one_and_the_class_order():
    proba, _ = _sample(500, 3)
    for t in (0.2, 1.0, 7.0):
        scaled = scale_probabilities(proba, t)
        assert np.allclose(scaled.sum(axis=1), 1.0)
        assert np.array_equal(np.argmax(scaled, axis=1), np.argmax(proba, axis=1))


@pytest.fixture(scope="module")
def wine() -> Run:
    # Boosting without early stopping at a high rate: overconfident, as a temperature can fix.
    return run_trials("wine_quality", "quality", "classification", [
        candidate(0, "lightgbm", n_estimators=300, learning_rate=0.3),
        candidate(1, "random_forest", n_estimators=50),
    ])


def test_log_loss_gets_a_temperature_that_improves_it(wine):
    metric = METRICS["log_loss"]
    ranked = by_metric(wine, "log_loss")
    plain = Choice((ranked[0],), (1.0,), ranked[0].metrics)
    calibrated = calibrate(plain, wine.data, metric)
    assert calibrated.temperature != 1.0
    assert calibrated.metrics["log_loss"] < plain.metrics["log_loss"]
    data = wine.data
    expected = score_all(data.task, data.y_valid, calibrated.predictions, data.weights_valid,
                         data.y_range, data.positive)
    assert calibrated.metrics == pytest.approx(expected)


@pytest.mark.parametrize("name", ["AUC_weighted", "accuracy"])
def test_metrics_that_do_not_read_probabilities_are_left_alone(wine, name):
    ranked = by_metric(wine, name)
    choice = final_choice(ranked, wine.data, METRICS[name], rounds=10, enabled=False)
    assert choice.temperature == 1.0 and choice.metrics == ranked[0].metrics


def test_the_refit_model_predicts_at_the_temperature(wine):
    metric = METRICS["log_loss"]
    ranked = by_metric(wine, "log_loss")
    choice = final_choice(ranked, wine.data, metric, rounds=10, enabled=False)
    assert choice.temperature != 1.0
    settings = TrialSettings(roles=wine.roles, seed=0, n_jobs=1)
    model = pickle.loads(pickle.dumps(refit_model(choice, wine.data, settings)))
    plain = refit_model(replace(choice, temperature=1.0), wine.data, settings)
    rows = wine.data.X.iloc[:50]
    assert np.allclose(model.predict_proba(rows),
                       scale_probabilities(plain.predict_proba(rows), choice.temperature))


def test_a_stack_is_scored_by_its_own_predictions(wine):
    ranked = by_metric(wine, "log_loss")
    stacked = np.full_like(ranked[0].predictions, 1 / ranked[0].predictions.shape[1])
    choice = Choice(tuple(ranked[:2]), (1.0, 1.0), {}, STACK, stacked=stacked)
    assert np.array_equal(choice.predictions, stacked)
