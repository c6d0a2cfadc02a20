"""Permutation importance of the raw input columns, through the whole refit pipeline, in the
time the budget gives it: rows and repeats shrink towards the aim, and the chart is given up,
with the reason, when even the smallest pass would not fit the limit.

The permuted copies of every column are stacked and predicted together (a call per CHUNK_CELLS
cells), not a call per column and repeat as scikit-learn's permutation_importance makes them: a
pipeline's or an ensemble's fixed cost per call (each member featurizes its columns) is paid once
per chunk instead of once per column, which on a small held-out set is most of the time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.models.predict import predict_scores
from tasks.registry.model_charts import plt

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.figure import Figure

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.metrics import Metric
    from tasks.types import Array, Estimator

__all__ = ["permutation_chart", "IMPORTANCE_ROWS", "MAX_FEATURES_SHOWN"]

IMPORTANCE_ROWS = 2_000
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_REPEATS = 3
MAX_FEATURES_SHOWN = 20
CHUNK_CELLS = 2_000_000  # cells of permuted copies predicted in one call: memory stays bounded


def permutation_chart(held: HeldOutPredictions, model: Estimator, metric: Metric, seed: int,
                      aim: float, limit: float = float("inf")) -> tuple[Figure, dict[str, float]]:
    """Rows and repeats shrink towards `aim` seconds; the chart is given up, with the reason,
    when even the smallest pass would take longer than `limit` (the time budget's share)."""
    order = np.random.default_rng(seed).permutation(len(held.X))
    shuffles = _Shuffles(held, model, metric, order)
    n_rows, repeats = shuffles.plan(aim, limit)
    means, spread = shuffles.importances(n_rows, repeats, seed)
    importance = {k: float(v) for k, v in means.sort_values(ascending=False).items()}
    return _bars(means, spread, metric, n_rows, repeats), importance


@dataclass
class _Shuffles:
    """The held-out rows drawn in `order`: the first n of it are the rows a pass scores."""

    held: HeldOutPredictions
    model: Estimator
    metric: Metric
    order: Array
    baseline: Array | None = None  # predictions of the rows plan() chose, when it made them

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.held.X.columns]

    def rows(self, n: int) -> Array:
        return np.sort(self.order[:n])

    def score(self, rows: Array, pred: Array) -> float:
        """The metric on these rows' predictions, as a score to maximise."""
        held = self.held
        w = None if held.weights is None else held.weights[rows]
        value = self.metric(held.y[rows], pred, w, held.y_range, held.positive, held.threshold)
        return value if self.metric.greater_is_better else -value

    def predict(self, X: pd.DataFrame) -> Array:
        return predict_scores(self.model, X, self.held.classes)

    def plan(self, aim: float, limit: float) -> tuple[int, int]:
        """(rows, repeats) that fit `aim`, a call costing a + b x its rows (_call_cost)."""
        n = min(len(self.order), IMPORTANCE_ROWS)
        X = self.held.X.iloc[self.rows(n)].reset_index(drop=True)
        fixed, per_row, self.baseline = _call_cost(self.predict, X)
        columns = len(self.columns)

        def cost(rows: int, repeats: int) -> float:
            calls = repeats * math.ceil(rows * columns / self._chunk_rows(rows)) + 1
            return calls * fixed + per_row * rows * (repeats * columns + 1)

        repeats = IMPORTANCE_REPEATS
        while repeats > 1 and cost(n, repeats) > aim:
            repeats -= 1
        if cost(n, repeats) > aim:
            share = max(0.0, aim - 2 * fixed) / max(per_row * (columns + 1), 1e-12)
            n = max(min(IMPORTANCE_MIN_ROWS, n), min(n, int(share)))
            needed = cost(n, repeats)
            if needed > limit:
                raise TimeoutError(f"shuffling {columns} columns would take about "
                                   f"{needed:.0f} s, more than the {limit:.1f} s the time "
                                   "budget leaves it")
        return n, repeats

    def importances(self, n: int, repeats: int, seed: int) -> tuple[pd.Series, pd.Series]:
        """Each column's drop in score when shuffled (mean and standard deviation over the
        repeats), as scikit-learn's permutation_importance defines it."""
        rows = self.rows(n)
        X = self.held.X.iloc[rows].reset_index(drop=True)
        pred = self.baseline if self.baseline is not None and len(self.baseline) == n \
            else self.predict(X)
        baseline = self.score(rows, pred)
        rng = np.random.default_rng(seed)
        columns = list(X.columns)
        drops = np.empty((len(columns), repeats))
        per_call = max(1, self._chunk_rows(n) // n)  # copies predicted together
        for r in range(repeats):
            for start in range(0, len(columns), per_call):
                chunk = columns[start:start + per_call]
                copies = []
                for column in chunk:
                    copy = X.copy()
                    # A Series keeps the column's dtype (a category stays one).
                    copy[column] = X[column].iloc[rng.permutation(n)].reset_index(drop=True)
                    copies.append(copy)
                pred = self.predict(pd.concat(copies, ignore_index=True))
                for i in range(len(chunk)):
                    drops[start + i, r] = baseline - self.score(rows, pred[i * n:(i + 1) * n])
        index = [str(c) for c in columns]
        return (pd.Series(drops.mean(axis=1), index=index),
                pd.Series(drops.std(axis=1), index=index))

    def _chunk_rows(self, n: int) -> int:
        return max(n, CHUNK_CELLS // max(1, len(self.columns)))


def _call_cost(predict: Callable[[pd.DataFrame], Array],
               X: pd.DataFrame) -> tuple[float, float, Array]:
    """(seconds a call costs whatever its rows, seconds per row, X's predictions), from a call
    on a tenth of X's rows and one on all of them: little more than the one call."""
    began = time.perf_counter()
    few = len(predict(X.iloc[:max(1, len(X) // 10)]))
    brief = time.perf_counter() - began
    began = time.perf_counter()
    pred = predict(X)
    long = time.perf_counter() - began
    per_row = max(0.0, long - brief) / (len(X) - few) if len(X) > few else long / len(X)
    return max(0.0, long - per_row * len(X)), per_row, pred


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
