"""Error analysis: the primary metric by cohort of the held-out rows, for the columns that
matter most (by permutation importance), so the card can name where the model is weakest.

Numeric columns are cut into quantile bins, other columns grouped by their most frequent values
(the rest as "other"), missing values are a cohort of their own. Cohorts too small for their
score to mean much are left out. Works on the held-out predictions the charts use: no model
call, so it costs milliseconds per cohort.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.registry.model_charts import plt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.metrics import Metric
    from tasks.types import Array, Json

__all__ = ["Cohort", "ErrorAnalysis", "error_analysis", "cohort_chart", "cohort_masks"]

COLUMNS = 4  # the strongest raw columns analysed
BINS = 4  # quantile bins of a numeric column
TOP_VALUES = 5  # values of a categorical column kept as cohorts of their own
MIN_ROWS = 30  # a smaller cohort's score is mostly noise
SECONDS = 5.0  # columns after this are left out: never a reason for the report to run late
# In parentheses: a category may itself be called "other" (credit_g's purpose has one).
MISSING, OTHER = "(missing)", "(other)"


@dataclass(frozen=True)
class Cohort:
    column: str
    value: str  # a quantile bin "[a, b]", a category, OTHER or MISSING
    rows: int
    score: float


@dataclass(frozen=True)
class ErrorAnalysis:
    metric: str
    greater_is_better: bool
    basis: str  # "test" or "validation"
    overall: float
    cohorts: tuple[Cohort, ...]
    small: int  # cohorts left out for having fewer than MIN_ROWS rows
    columns_left_out: tuple[str, ...] = ()  # not analysed: out of time

    def weakest(self, n: int = 5) -> list[Cohort]:
        """The cohorts where the metric is worst, worst first (only those worse than overall)."""
        sign = 1.0 if self.greater_is_better else -1.0
        worse = [c for c in self.cohorts if sign * (self.overall - c.score) > 0]
        return sorted(worse, key=lambda c: sign * c.score)[:n]

    def to_dict(self) -> Json:
        return {**asdict(self), "weakest": [asdict(c) for c in self.weakest()]}


def cohort_masks(values: pd.Series, bins: int = BINS,
                 top: int = TOP_VALUES) -> list[tuple[str, Array]]:
    """(label, row mask) of each cohort of one column; together they cover every row."""
    missing = values.isna().to_numpy()
    cohorts: list[tuple[str, Array]] = []
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values) \
            and values.nunique() > top:
        numbers = values.astype(float)
        cut = pd.qcut(numbers, q=bins, duplicates="drop")
        for interval in cut.cat.categories:
            label = f"[{interval.left:.4g}, {interval.right:.4g}]"
            cohorts.append((label, (cut == interval).to_numpy()))
    else:
        text = values.astype("string")
        common = text.value_counts().index[:top]
        for value in common:
            cohorts.append((str(value), (text == value).fillna(False).to_numpy(dtype=bool)))
        rest = ~missing & ~text.isin(common).fillna(False).to_numpy(dtype=bool)
        if rest.any():
            cohorts.append((OTHER, rest))
    if missing.any():
        cohorts.append((MISSING, missing))
    return cohorts


def error_analysis(held: HeldOutPredictions, metric: Metric, importance: dict[str, float], *,
                   columns: int = COLUMNS, min_rows: int = MIN_ROWS,
                   seconds: float = SECONDS) -> ErrorAnalysis:
    """The metric by cohort of the `columns` most important raw columns."""
    if not importance:
        raise ValueError("no permutation importance to choose the columns by")
    started = time.perf_counter()
    names = {str(c): c for c in held.X.columns}
    strongest = [c for c in sorted(importance, key=importance.__getitem__, reverse=True)
                 if c in names][:columns]
    found: list[Cohort] = []
    small, left_out = 0, []
    for column in strongest:
        if time.perf_counter() - started > seconds:
            left_out.append(column)
            continue
        for label, mask in cohort_masks(held.X[names[column]]):
            rows = int(mask.sum())
            if rows < min_rows:
                small += 1
                continue
            score = _score(held, metric, mask)
            if np.isfinite(score):  # e.g. AUC where a cohort holds one class only
                found.append(Cohort(column, label, rows, score))
    overall = _score(held, metric, np.ones(len(held.y), dtype=bool))
    return ErrorAnalysis(metric.name, metric.greater_is_better, held.basis, overall,
                         tuple(found), small, tuple(left_out))


def _score(held: HeldOutPredictions, metric: Metric, mask: Array) -> float:
    weights = None if held.weights is None else held.weights[mask]
    try:
        return float(metric(held.y[mask], held.pred[mask], weights, held.y_range, held.positive,
                            held.threshold))
    except ValueError:
        return float("nan")


def cohort_chart(analysis: ErrorAnalysis, shown: int = 10) -> Figure:
    """The weakest cohorts as bars, against the overall score."""
    weakest = analysis.weakest(shown)[::-1]
    if not weakest:
        raise ValueError("no cohort scores worse than the held-out rows as a whole")
    labels = [f"{c.column} = {c.value} ({c.rows} rows)" for c in weakest]
    chart, axes = plt.subplots(figsize=(7.5, 1.6 + 0.35 * len(weakest)))
    axes.barh(labels, [c.score for c in weakest], color="tab:red", alpha=0.75)
    axes.axvline(analysis.overall, color="black", linestyle="--", linewidth=1,
                 label=f"all rows: {analysis.overall:.4g}")
    axes.set(xlabel=f"{analysis.metric} on the cohort's rows", ylabel="Cohort")
    axes.legend(loc="lower right", fontsize=8)
    return chart
