"""A decision threshold for binary labels, where the primary metric reads them.

A classifier's label is its most likely class: the positive class above 0.5. That suits accuracy
on balanced classes, not balanced accuracy or F1 on imbalanced ones, which a lower threshold on
the rare class's probability can raise by a lot. One threshold on the positive class's
probability, chosen on the chosen model's validation (or out-of-fold) probabilities, is kept only
when it beats the most likely class by MIN_GAIN; the pickled model's predict applies it and its
predict_proba stays as it was.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import uniform_filter1d

from tasks.metrics import LABEL_METRICS, score_all

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.final.choice import Choice
    from tasks.metrics import Metric
    from tasks.types import Array

__all__ = ["TUNED_METRICS", "MIN_GAIN", "decision_threshold", "search_threshold", "tune_threshold"]

# Not the one-sided binary precision and recall: a threshold maximises them by giving the other
# side away (recall is 1 at threshold 0).
TUNED_METRICS = LABEL_METRICS - {"precision_score_binary", "recall_score_binary"}
# Kept only when it raises the validation metric by this much (in the metric's own units).
# Smaller gains were a coin toss on held-out rows (meta tables, refit model: 48 better, 29 worse);
# from 0.005 up, 161 of 174 carried over, and keeping no smaller ones lost almost nothing
# (benchmarks/thresholds.py; benchmarks/results/2026-12-06-issue16.md, "Decision thresholds").
MIN_GAIN = 0.005
# The candidates: these quantiles of the positive class's validation probabilities, so that each
# step moves about 1% of the rows whatever the model's spread.
_LEVELS = np.linspace(0.01, 0.99, 99)
# The best candidate by its score averaged with its neighbours' (4 each side): on a few hundred
# rows the single best one is partly luck. Against none (window 1), it halved the thresholds
# kept that then lost on held-out rows (13 against 25 of 336 fits), at the same mean gain.
WINDOW = 9


def search_threshold(
    proba: Array, y: Array, metric: Metric, weights: Array | None = None, positive: int = 1,
    window: int = WINDOW,
) -> tuple[float, float]:
    """The threshold on proba[:, positive] whose metric, averaged over `window` neighbouring
    candidates, is best; with its own score on (y, weights)."""
    candidates = np.unique(np.quantile(proba[:, positive], _LEVELS))
    scores = np.array([metric(y, proba, weights, 1.0, positive, t) for t in candidates])
    signed = scores if metric.greater_is_better else -scores
    best = int(np.argmax(uniform_filter1d(signed, size=window, mode="nearest")))
    return float(candidates[best]), float(scores[best])


def tune_threshold(choice: Choice, data: SearchData, metric: Metric) -> Choice:
    """The choice with a decision threshold and its metrics at it, when the task is binary, the
    metric reads labels and the threshold improves it by MIN_GAIN at least; else the choice as
    it was."""
    binary = data.classes is not None and len(data.classes) == 2
    before = choice.metrics.get(metric.name)
    if not binary or metric.name not in TUNED_METRICS or before is None:
        return choice
    t, after = search_threshold(choice.predictions, data.y_valid, metric, data.weights_valid,
                                data.positive)
    if not metric.better(after, before) or abs(after - before) < MIN_GAIN:
        return choice
    metrics = score_all(data.task, data.y_valid, choice.predictions, data.weights_valid,
                        data.y_range, data.positive, threshold=t)
    return replace(choice, metrics=metrics, threshold=t)


def decision_threshold(choice: Choice, classes: Array | None) -> float | None:
    """The positive class's probability from which the model labels a row positive: the tuned
    threshold, 0.5 for other binary models (the most likely class), None without two classes."""
    if choice.threshold is not None:
        return choice.threshold
    return 0.5 if classes is not None and len(classes) == 2 else None
