"""Temperature scaling of the final model's class probabilities (Guo et al. 2017).

Boosted trees stopped on a validation loss and blends of several models are often over- or
under-confident as a whole. One temperature T, fitted on the chosen model's validation (or
out-of-fold) probabilities, rescales their log-probabilities: p_k ∝ p_k^(1/T). Class order, hence
accuracy and a binary AUC, stays as it is; only the sharpness changes. It is fitted and kept only
when the primary metric reads the probabilities themselves (log loss) and improves on them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from tasks.metrics import score_all
from tasks.models.predict import scale_probabilities

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.final.choice import Choice
    from tasks.metrics import Metric
    from tasks.types import Array

__all__ = ["CALIBRATED_METRICS", "calibrate", "fit_temperature"]

CALIBRATED_METRICS = frozenset({"log_loss"})
# Bounds of T: beyond them the model's probabilities carry next to nothing, or are 0/1 anyway.
LOWEST, HIGHEST = 0.05, 20.0
# Kept only when it lowers the validation log loss by this share. Smaller gains did not carry
# over to the refit model on held-out rows (meta tables: about half did; at 0.3% and above, 15
# of 19 did: benchmarks/results/2026-12-06-issue16.md).
MIN_GAIN = 0.003
_TINY = 1e-15


def fit_temperature(proba: Array, y: Array, weights: Array | None = None) -> float:
    """The T that minimises the (weighted) log loss of proba at T against class codes y."""
    logp = np.log(np.clip(proba, _TINY, 1.0))
    rows = np.arange(len(y))

    def loss(log_t: float) -> float:
        nll = -log_softmax(logp / np.exp(log_t), axis=1)[rows, y]
        return float(np.average(nll, weights=weights))

    found = minimize_scalar(loss, bounds=(np.log(LOWEST), np.log(HIGHEST)), method="bounded",
                            options={"xatol": 1e-4})
    return float(np.exp(found.x))


def calibrate(choice: Choice, data: SearchData, metric: Metric) -> Choice:
    """The choice with a temperature fitted on its validation probabilities, when the metric
    reads probabilities and the temperature improves it by MIN_GAIN at least; else the choice
    as it was."""
    if data.task != "classification" or metric.name not in CALIBRATED_METRICS:
        return choice
    proba = choice.predictions
    y = np.asarray(data.y_valid, dtype=int)
    t = fit_temperature(proba, y, data.weights_valid)
    metrics = score_all(data.task, data.y_valid, scale_probabilities(proba, t),
                        data.weights_valid, data.y_range, data.positive)
    before, after = choice.metrics[metric.name], metrics[metric.name]
    if not metric.better(after, before) or abs(before - after) < MIN_GAIN * abs(before):
        return choice
    return replace(choice, metrics=metrics, temperature=t)
