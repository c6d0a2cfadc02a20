"""Permutation importance of the raw input columns, through the whole refit pipeline, in the
time the budget gives it: rows and repeats shrink towards the aim, and the chart is given up,
with the reason, when even the smallest pass would not fit the limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from tasks.models.predict import predict_scores
from tasks.registry.model_charts import plt
from tasks.types import Array, Estimator

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.metrics import Metric

__all__ = ["permutation_chart", "IMPORTANCE_ROWS", "MAX_FEATURES_SHOWN"]

IMPORTANCE_ROWS = 2_000
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_REPEATS = 3
MAX_FEATURES_SHOWN = 20

# scikit-learn's scoring callable: (estimator, X, y) -> score, greater is better.
_Scorer = Callable[[Estimator, pd.DataFrame, Array], float]


def permutation_chart(held: HeldOutPredictions, model: Estimator, metric: Metric, seed: int,
                      aim: float, limit: float = float("inf")) -> tuple[Figure, dict[str, float]]:
    """Rows and repeats shrink towards `aim` seconds; the chart is given up, with the reason,
    when even the smallest pass would take longer than `limit` (the time budget's share)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(held.X))
    score = _scorer(held, metric, order)
    n_rows, repeats = _rows_and_repeats(held, model, score, order, aim, limit)
    rows = np.sort(order[:n_rows])
    X = held.X.iloc[rows].reset_index(drop=True)
    y = held.y[rows]
    found = permutation_importance(model, X, y, scoring=score, n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    means = pd.Series(found.importances_mean, index=[str(c) for c in X.columns])
    importance = {k: float(v) for k, v in means.sort_values(ascending=False).items()}
    spread = pd.Series(found.importances_std, index=means.index)
    return _bars(means, spread, metric, len(rows), repeats), importance


def _scorer(held: HeldOutPredictions, metric: Metric, order: Array) -> _Scorer:
    """The metric as a score to maximise, on rows drawn from the start of `order` (sorted),
    weighted as those rows are."""
    sign = 1.0 if metric.greater_is_better else -1.0
    w_all = held.weights

    def score(estimator: Estimator, X_: pd.DataFrame, y_: Array) -> float:
        pred = predict_scores(estimator, X_, held.classes)
        w = None if w_all is None else w_all[np.sort(order[:len(y_)])]
        return sign * metric(y_, pred, w, held.y_range, held.positive, held.threshold)

    return score


def _rows_and_repeats(held: HeldOutPredictions, model: Estimator, score: _Scorer, order: Array,
                      aim: float, limit: float) -> tuple[int, int]:
    """One scoring pass is timed; rows and repeats shrink until the whole fits the aim."""
    n_rows = min(len(order), IMPORTANCE_ROWS)
    per_pass = _timed_pass(held, model, score, order, n_rows)
    columns = held.X.shape[1]
    repeats = IMPORTANCE_REPEATS
    while repeats > 1 and per_pass * columns * repeats > aim:
        repeats -= 1
    if per_pass * columns * repeats > aim:
        share = aim / (per_pass * columns * repeats)
        n_rows = max(min(IMPORTANCE_MIN_ROWS, n_rows), int(n_rows * share))
        # A pass does not shrink with the rows below some size (an ensemble's members each
        # featurize every column): timed again, and given up when it cannot fit the limit.
        needed = _timed_pass(held, model, score, order, n_rows) * columns * repeats
        if needed > limit:
            raise TimeoutError(f"shuffling {columns} columns would take about {needed:.0f} s, "
                               f"more than the {limit:.1f} s the time budget leaves it")
    return n_rows, repeats


def _timed_pass(held: HeldOutPredictions, model: Estimator, score: _Scorer, order: Array,
                n_rows: int) -> float:
    """Seconds one scoring pass over the first n_rows of `order` takes."""
    began = time.perf_counter()
    rows = np.sort(order[:n_rows])
    score(model, held.X.iloc[rows], held.y[rows])
    return time.perf_counter() - began


def _bars(means: pd.Series, spread: pd.Series, metric: Metric, n_rows: int,
          repeats: int) -> Figure:
    """The most important columns as horizontal bars, the most important on top."""
    top = means.sort_values(ascending=False).index[:MAX_FEATURES_SHOWN][::-1]
    chart, axes = plt.subplots(figsize=(7.5, 1.6 + 0.3 * len(top)))
    axes.barh(list(top), means[top], xerr=spread[top] if repeats > 1 else None, color="tab:blue",
              alpha=0.8)
    axes.axvline(0, color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel=f"Drop in {metric.name} when the column is shuffled\n"
             f"({n_rows} rows, {repeats} repeat{'s' if repeats > 1 else ''}"
             f"{', bars: one standard deviation' if repeats > 1 else ''})", ylabel="Input column")
    return chart
