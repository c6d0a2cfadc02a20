"""Azure automated ML's metrics, computed from one set of predictions per trial.

Every trial yields validation predictions once (class probabilities for classifiers, values for
regressors); all metrics are computed from them, so a secondary metric costs no extra predict.
Classification targets arrive as integer codes 0..K-1 in the order of the fitted ``classes_``;
binary metrics score the class coded ``positive`` (``positive_label``; by default the second of
the sorted labels, as scikit-learn does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from tasks.errors import ConfigError
from tasks.models.predict import class_codes

__all__ = ["Metric", "METRICS", "LABEL_METRICS", "get_metric", "default_metric", "score_all",
           "early_stopping_watch"]

# (targets, predictions, weights, y_range, positive) -> score
Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray | None, float, int], float]


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    greater_is_better: bool
    fn: Scorer

    def __call__(
        self,
        y: np.ndarray,
        pred: np.ndarray,
        weight: np.ndarray | None = None,
        y_range: float = 1.0,
        positive: int = 1,
        threshold: float | None = None,
    ) -> float:
        """The score of pred; a metric of labels reads them at the decision threshold on the
        positive class's probability when there is one, else takes the most likely class."""
        if threshold is not None and self.reads_labels:
            # The labels as probabilities whose most likely class they are.
            pred = np.eye(pred.shape[1])[class_codes(pred, threshold, positive)]
        return float(self.fn(y, pred, weight, y_range, positive))

    @property
    def reads_labels(self) -> bool:
        return self.name in LABEL_METRICS

    def better(self, a: float, b: float) -> bool:
        """True when score a beats score b."""
        return a > b if self.greater_is_better else a < b


def _labels(proba: np.ndarray) -> np.ndarray:
    labels: np.ndarray = np.argmax(proba, axis=1)
    return labels


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    out = label_binarize(y, classes=np.arange(k))
    return np.hstack([1 - out, out]) if k == 2 else out


def _auc(average: str) -> Scorer:
    def fn(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, *_: object) -> float:
        if w is None:
            return _ranked_auc(y, proba, average)
        if proba.shape[1] == 2:
            return float(skm.roc_auc_score(y, proba[:, 1], sample_weight=w))
        return float(skm.roc_auc_score(
            y, proba, average=average, multi_class="ovr", labels=np.arange(proba.shape[1]),
            sample_weight=w,
        ))

    return fn


def _ranked_auc(y: np.ndarray, proba: np.ndarray, average: str) -> float:
    """roc_auc_score's value (one-vs-rest for classes, averaged by support or plainly), as the
    Mann-Whitney statistic of average ranks, which ties score as the ROC's trapezoids do. The
    ensemble selection scores hundreds of blends: on letter's 26 classes sklearn's took 44 ms
    a call, mostly input checks; this takes a few."""
    k = proba.shape[1]
    if k > 2 and not np.allclose(1, proba.sum(axis=1)):
        raise ValueError("Target scores need to be probabilities for multiclass roc_auc")
    columns = [1] if k == 2 else range(k)
    scores, support = [], []
    for c in columns:
        truth = y == c
        n_pos = int(truth.sum())
        n_neg = len(y) - n_pos
        if n_pos == 0 and k > 2 and average == "weighted":
            continue  # a class absent from these rows weighs nothing in the support's average
        if n_pos == 0 or n_neg == 0:
            raise ValueError("Only one class present in y_true. ROC AUC score is not defined.")
        ranks = rankdata(proba[:, c])
        scores.append((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        support.append(n_pos)
    return float(np.average(scores, weights=support if average == "weighted" else None))


def _average_precision_weighted(
    y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, *_: object
) -> float:
    return float(skm.average_precision_score(
        _onehot(y, proba.shape[1]), proba, average="weighted", sample_weight=w
    ))


def _norm_macro_recall(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, *_: object) -> float:
    # Azure: macro recall rescaled so that random guessing scores 0 and perfection 1.
    k = proba.shape[1]
    chance = 0.5 if k == 2 else 1.0 / k
    recall = float(skm.recall_score(
        y, _labels(proba), average="macro", labels=np.arange(k), sample_weight=w, zero_division=0
    ))
    return (recall - chance) / (1 - chance)


def _label_metric(fn: Callable[..., float], **kwargs: object) -> Scorer:
    def scorer(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, *_: object) -> float:
        return fn(y, _labels(proba), sample_weight=w, **kwargs)

    return scorer


def _binary(fn: Callable[..., float], *, scores: bool = False, **kwargs: object) -> Scorer:
    """A metric of the positive class alone; undefined (left out) beyond two classes."""

    def scorer(
        y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, _: float, positive: int
    ) -> float:
        if proba.shape[1] != 2:
            raise ValueError("binary metric on more than two classes")
        truth = (y == positive).astype(int)
        guess = proba[:, positive] if scores else (_labels(proba) == positive).astype(int)
        return fn(truth, guess, sample_weight=w, **kwargs)

    return scorer


def _log_loss(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, *_: object) -> float:
    return float(skm.log_loss(
        y, np.clip(proba, 1e-15, 1), labels=np.arange(proba.shape[1]), sample_weight=w
    ))


def _rmse(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, *_: object) -> float:
    return float(skm.root_mean_squared_error(y, p, sample_weight=w))


def _spearman(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, *_: object) -> float:
    rho = float(spearmanr(y, p).statistic)
    return 0.0 if np.isnan(rho) else rho


def _mape(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, *_: object) -> float:
    if np.all(y != 0):
        return float(skm.mean_absolute_percentage_error(y, p, sample_weight=w))
    return np.nan


_CLASSIFICATION: dict[str, tuple[bool, Scorer]] = {
    "AUC_weighted": (True, _auc("weighted")),
    "AUC_macro": (True, _auc("macro")),
    "accuracy": (True, _label_metric(skm.accuracy_score)),
    "average_precision_score_weighted": (True, _average_precision_weighted),
    "norm_macro_recall": (True, _norm_macro_recall),
    "precision_score_weighted": (
        True, _label_metric(skm.precision_score, average="weighted", zero_division=0)
    ),
    "recall_score_weighted": (
        True, _label_metric(skm.recall_score, average="weighted", zero_division=0)
    ),
    "balanced_accuracy": (True, _label_metric(skm.balanced_accuracy_score)),
    "f1_score_macro": (True, _label_metric(skm.f1_score, average="macro", zero_division=0)),
    "f1_score_weighted": (True, _label_metric(skm.f1_score, average="weighted", zero_division=0)),
    "matthews_correlation": (True, _label_metric(skm.matthews_corrcoef)),
    "precision_score_macro": (
        True, _label_metric(skm.precision_score, average="macro", zero_division=0)
    ),
    "recall_score_macro": (True, _label_metric(skm.recall_score, average="macro", zero_division=0)),
    "log_loss": (False, _log_loss),
    "AUC_binary": (True, _binary(skm.roc_auc_score, scores=True)),
    "average_precision_score_binary": (True, _binary(skm.average_precision_score, scores=True)),
    "precision_score_binary": (True, _binary(skm.precision_score, zero_division=0)),
    "recall_score_binary": (True, _binary(skm.recall_score, zero_division=0)),
    "f1_score_binary": (True, _binary(skm.f1_score, zero_division=0)),
}

_REGRESSION: dict[str, tuple[bool, Scorer]] = {
    "normalized_root_mean_squared_error": (False, lambda y, p, w, r, *_: _rmse(y, p, w, r) / r),
    "root_mean_squared_error": (False, _rmse),
    "normalized_mean_absolute_error": (
        False, lambda y, p, w, r, *_: skm.mean_absolute_error(y, p, sample_weight=w) / r
    ),
    "mean_absolute_error": (
        False, lambda y, p, w, r, *_: skm.mean_absolute_error(y, p, sample_weight=w)
    ),
    "r2_score": (True, lambda y, p, w, r, *_: skm.r2_score(y, p, sample_weight=w)),
    "spearman_correlation": (True, _spearman),
    "mean_absolute_percentage_error": (False, _mape),
}

# The metrics of predicted labels rather than of probabilities: a decision threshold moves them.
LABEL_METRICS = frozenset({
    "accuracy", "norm_macro_recall", "precision_score_weighted", "recall_score_weighted",
    "balanced_accuracy", "f1_score_macro", "f1_score_weighted", "matthews_correlation",
    "precision_score_macro", "recall_score_macro", "precision_score_binary",
    "recall_score_binary", "f1_score_binary",
})

METRICS: dict[str, Metric] = {
    **{n: Metric(n, "classification", g, f) for n, (g, f) in _CLASSIFICATION.items()},
    **{n: Metric(n, "regression", g, f) for n, (g, f) in _REGRESSION.items()},
}

_DEFAULTS = {"classification": "AUC_weighted", "regression": "normalized_root_mean_squared_error"}


# Early stopping of boosting rounds follows the primary metric where the libraries can watch it:
# "auc" is a binary AUC; "loss" is the model's own objective, log loss for classes, squared
# error for values. For other metrics (None) the boosters, whose rounds are not searched, watch
# their own loss (tasks.models.boosting.always_stops).
_WATCHED = {
    **dict.fromkeys(("AUC_weighted", "AUC_macro", "AUC_binary"), "auc"),
    **dict.fromkeys(("log_loss", "normalized_root_mean_squared_error", "root_mean_squared_error",
                     "r2_score"), "loss"),
}


def early_stopping_watch(metric: Metric, n_classes: int | None) -> str | None:
    """What boosting's early stopping watches for this primary metric, or None: nothing the
    libraries have, so they watch their own loss. Binary data only for "auc" (the libraries' AUC
    is the binary one)."""
    watch = _WATCHED.get(metric.name)
    return None if watch == "auc" and n_classes != 2 else watch


def default_metric(task: str) -> str:
    return _DEFAULTS[task]


def get_metric(name: str, task: str) -> Metric:
    """The metric called name, checked against the task; a wrong name lists the valid ones."""
    valid = sorted(n for n, m in METRICS.items() if m.task == task)
    lookup = {n.lower(): m for n, m in METRICS.items()}
    metric = lookup.get(name.lower())
    if metric is None or metric.task != task:
        kind = "unknown metric" if metric is None else f"metric for {metric.task}, not {task}:"
        raise ConfigError(
            f"primary_metric '{name}' is an {kind}; valid {task} metrics are: {', '.join(valid)}"
            if metric is None
            else f"primary_metric '{name}' is a {kind} use one of: {', '.join(valid)}"
        )
    return metric


def score_all(
    task: str,
    y: np.ndarray,
    pred: np.ndarray,
    weight: np.ndarray | None = None,
    y_range: float = 1.0,
    positive: int = 1,
    threshold: float | None = None,
) -> dict[str, float]:
    """Every metric of the task, labels at `threshold` if given (Metric.__call__); a metric
    undefined on this data is left out, not faked."""
    out: dict[str, float] = {}
    for name, metric in METRICS.items():
        if metric.task != task:
            continue
        try:
            value = metric(y, pred, weight, y_range, positive, threshold)
        except ValueError:
            continue
        if np.isfinite(value):
            out[name] = value
    return out
