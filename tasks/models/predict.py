"""A fitted model's outputs as every stage scores them: numpy only, no modelling library."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["class_codes", "predict_scores", "scale_probabilities"]

_TINY = 1e-15


def scale_probabilities(proba: Array, temperature: float) -> Array:
    """Class probabilities (rows summing to 1) at a temperature: p_k ∝ p_k^(1/T)
    (tasks.final.calibration fits T)."""
    if temperature == 1.0:
        return proba
    logits = np.log(np.clip(proba, _TINY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled: Array = np.exp(logits)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled


def class_codes(proba: Array, threshold: float | None = None, positive: int = 1) -> Array:
    """The predicted class codes: the most likely class; with a threshold (two classes only,
    tasks.final.thresholds), `positive` where its probability reaches it, as scikit-learn's
    FixedThresholdClassifier decides."""
    if threshold is None:
        codes: Array = np.argmax(proba, axis=1)
        return codes
    if proba.shape[1] != 2:
        raise ValueError(f"a decision threshold needs two classes, not {proba.shape[1]}")
    return np.where(proba[:, positive] >= threshold, positive, 1 - positive)


def predict_scores(model: Estimator, X: Rows, classes: Array | None) -> Array:
    """The fitted model's (a pipeline's) class probabilities in the order of `classes` (zeros for
    a class the model never saw), or regression values."""
    if classes is None:
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 outputs (XGBoost) drift from 1
    fitted = np.asarray(model.classes_)
    if len(fitted) == len(classes) and np.array_equal(fitted, classes):
        return proba
    full = np.zeros((proba.shape[0], len(classes)))
    full[:, np.searchsorted(classes, fitted)] = proba
    return full
