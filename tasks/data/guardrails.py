"""Azure's data guardrails, and more: what the data looked like and what was done about it.

Each check has a status, as in Azure: `passed` (nothing found), `done` (something was found and
handled, e.g. imputed), `alerted` (something the user should look at; training goes on).
The report is printed at the start of a run, logged to MLflow, and returned by the flow.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tasks.data.profile import Profile
    from tasks.data.sets import HeldOut, SearchData

__all__ = ["Check", "GuardrailReport", "build_report"]

log = logging.getLogger("automl")

IMBALANCE_RATIO = 0.2  # smallest class below 20% of the largest: alerted
LEAKAGE_SCORE = 0.99  # one feature alone reaching this AUC / R2 is suspicious
DRIFT_DISTANCE = 0.15  # KS statistic or total variation distance between two row sets
SAMPLE_ROWS = 5000  # checks that fit models look at this many rows at most
SKIPPED_SHOWN = 5  # skipped trials named in the report; the others counted


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # passed | done | alerted
    detail: str


@dataclass(frozen=True)
class GuardrailReport:
    checks: tuple[Check, ...]

    def to_dicts(self) -> list[dict[str, str]]:
        return [asdict(c) for c in self.checks]

    def to_text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        return "\n".join(f"{c.name:<{width}}  {c.status:<7}  {c.detail}" for c in self.checks)

    @property
    def alerted(self) -> list[Check]:
        return [c for c in self.checks if c.status == "alerted"]


def with_skipped(report: GuardrailReport, skipped: Sequence[str],
                 memory_limit: float | None) -> GuardrailReport:
    """The report with the search's trials that did not start and why: those max_memory_mb kept
    out (alerted), screened configurations too slow to promote to all the rows."""
    if not skipped and memory_limit is None:
        return report
    memory = [s for s in skipped if "max_memory_mb" in s]
    status = "alerted" if memory else "done" if skipped else "passed"
    shown = "; ".join(skipped[:SKIPPED_SHOWN])
    more = len(skipped) - SKIPPED_SHOWN
    detail = (f"{len(skipped)} trials did not start: {shown}" + (f"; and {more} more" if more > 0
                                                                  else "")
              if skipped else f"every trial started within max_memory_mb={memory_limit:g}")
    check = Check("skipped trials", status, detail)
    log.log(logging.WARNING if memory else logging.INFO, "guardrail %s: %s, %s", check.name,
            check.status, check.detail)
    return GuardrailReport((*report.checks, check))


def build_report(
    profile: Profile, data: SearchData, test: HeldOut | None = None
) -> GuardrailReport:
    checks = [
        _task(profile),
        _validation(data),
        _missing(data.X, profile),
        _high_cardinality(profile),
        _dropped(profile),
        _class_balance(data) if data.task == "classification" else None,
        _duplicates(data),
        _leakage(data, profile),
        _drift(data, test, profile),
        _families(profile),
    ]
    report = GuardrailReport(tuple(c for c in checks if c is not None))
    for check in report.checks:
        log.log(logging.WARNING if check.status == "alerted" else logging.INFO,
                "guardrail %s: %s, %s", check.name, check.status, check.detail)
    return report


def _task(profile: Profile) -> Check:
    how = "inferred from the target" if profile.task_inferred else "given"
    return Check("Task", "done" if profile.task_inferred else "passed",
                 f"{profile.task} ({how}), primary metric {profile.metric.name}")


def _validation(data: SearchData) -> Check:
    return Check("Validation split handling", "done", f"{data.scheme} {data.why}".strip())


def _missing(X: pd.DataFrame, profile: Profile) -> Check:
    counts = X[list(profile.roles.used)].isna().sum()
    counts = counts[counts > 0].sort_values(ascending=False)
    if counts.empty:
        return Check("Missing feature values imputation", "passed",
                     "no missing values in used columns")
    listed = ", ".join(f"{c} ({n:,})" for c, n in counts.head(10).items())
    more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
    return Check("Missing feature values imputation", "done",
                 f"imputed missing values in {listed}{more}")


def _high_cardinality(profile: Profile) -> Check:
    high = profile.roles.high_cardinality
    if not high:
        return Check("High cardinality feature detection", "passed",
                     "no high-cardinality categorical column")
    return Check("High cardinality feature detection", "done",
                 f"target-encoded {', '.join(high)}")


def _dropped(profile: Profile) -> Check:
    dropped = profile.roles.dropped
    if not dropped:
        return Check("Columns dropped", "passed", "every column is used")
    return Check("Columns dropped", "done", "; ".join(f"{c} ({why})" for c, why in dropped.items()))


def _class_balance(data: SearchData) -> Check:
    counts = pd.Series(data.y[data.refit_rows]).value_counts()
    ratio = counts.min() / counts.max()
    detail = (f"smallest class '{counts.idxmin()}' has {counts.min():,} rows, "
              f"largest '{counts.idxmax()}' {counts.max():,}")
    if ratio >= IMBALANCE_RATIO:
        return Check("Class balancing detection", "passed", detail)
    return Check("Class balancing detection", "alerted",
                 f"{detail} (ratio {ratio:.2f}); splits are stratified, so a class is in every "
                 "fold it has rows for; balanced class weights are among the searched options; "
                 "prefer AUC_weighted, balanced_accuracy or norm_macro_recall as the metric")


def _duplicates(data: SearchData) -> Check:
    rows = data.X.iloc[data.refit_rows].assign(__target__=data.y[data.refit_rows])
    count = int(rows.duplicated().sum())
    if count == 0:
        return Check("Duplicate rows", "passed", "no duplicated rows")
    return Check("Duplicate rows", "alerted",
                 f"{count:,} rows repeat an earlier row exactly; copies falling on both sides of a "
                 "validation split make the scores optimistic")


def _leakage(data: SearchData, profile: Profile) -> Check:
    """Fit a small tree on each feature alone: one that predicts the target almost perfectly is
    more often a leak (an ID, a post-outcome field) than a gift."""
    rows = data.refit_rows
    if len(rows) > SAMPLE_ROWS:
        rows = np.random.default_rng(0).choice(rows, SAMPLE_ROWS, replace=False)
    y = data.y[rows]
    suspects = []
    for column in profile.roles.used:
        score = _single_feature_score(data.X[column].iloc[rows], y, data.task)
        if score is not None and score >= LEAKAGE_SCORE:
            suspects.append(f"{column} ({score:.3f})")
    if not suspects:
        return Check("Target leakage hint", "passed", "no single feature predicts the target alone")
    what = "AUC" if data.task == "classification" else "R2"
    return Check("Target leakage hint", "alerted",
                 f"alone, {', '.join(suspects)} predict the target ({what}); check that they are "
                 "known before the outcome, or drop them")


def _single_feature_score(column: pd.Series, y: np.ndarray, task: str) -> float | None:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        x = column.astype(float).fillna(column.median()).to_numpy().reshape(-1, 1)
    else:
        x = pd.factorize(column.astype("str"))[0].reshape(-1, 1).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rare classes make sklearn warn about the folds
        try:
            if task == "regression":
                model = DecisionTreeRegressor(max_depth=6, random_state=0)
                pred = cross_val_predict(model, x, y, cv=3)
                return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
            model = DecisionTreeClassifier(max_depth=6, random_state=0)
            proba = cross_val_predict(model, x, y, cv=3, method="predict_proba")
            if proba.shape[1] == 2:
                return float(roc_auc_score(y, proba[:, 1]))
            return float(roc_auc_score(y, proba, multi_class="ovr", average="weighted"))
        except ValueError:
            return None


def _drift(data: SearchData, test: HeldOut | None, profile: Profile) -> Check:
    pairs = []
    if len(data.folds) == 1:
        fit, valid = data.folds[0]
        pairs.append(("validation", data.X.iloc[fit], data.X.iloc[valid]))
    if test is not None:
        pairs.append(("test", data.X.iloc[data.refit_rows], test.X))
    if not pairs:
        return Check("Train/validation drift", "passed",
                     "cross-validation folds are random parts of one table")
    drifted = []
    for label, left, right in pairs:
        # Identifiers, text and high-cardinality columns differ between any two row sets.
        comparable = [*profile.roles.numeric, *profile.roles.categorical]
        for column in [c for c in comparable if c in right.columns]:
            distance = _distance(left[column], right[column])
            if distance > DRIFT_DISTANCE:
                drifted.append(f"{column} ({label}, {distance:.2f})")
    if not drifted:
        return Check("Train/validation drift", "passed",
                     f"no column differs by more than {DRIFT_DISTANCE} between training and "
                     + " and ".join(p[0] for p in pairs))
    return Check("Train/validation drift", "alerted",
                 f"distributions differ for {', '.join(drifted[:10])}; validation scores may not "
                 "carry over")


def _distance(left: pd.Series, right: pd.Series) -> float:
    """KS statistic for numbers, total variation distance for categories."""
    left, right = left.dropna(), right.dropna()
    if left.empty or right.empty:
        return 0.0
    if pd.api.types.is_numeric_dtype(left) and pd.api.types.is_numeric_dtype(right) \
            and not pd.api.types.is_bool_dtype(left):
        return float(ks_2samp(left.astype(float), right.astype(float)).statistic)
    p = left.astype("str").value_counts(normalize=True)
    q = right.astype("str").value_counts(normalize=True)
    return float(0.5 * p.subtract(q, fill_value=0).abs().sum())


def _families(profile: Profile) -> Check | None:
    skipped = profile.skipped
    if not skipped:
        return None
    return Check("Model families skipped", "done", "; ".join(skipped.values()))
