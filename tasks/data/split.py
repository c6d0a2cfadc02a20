"""Split the rows: an optional test set, then holdout, k-fold CV or a given validation set."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from tasks.budget import budget_folds, check_budget
from tasks.data.sets import HeldOut, SearchData

if TYPE_CHECKING:
    from tasks.config import AutoMLConfig
    from tasks.data.profile import Profile

__all__ = ["SplitPlan", "split_data", "CV_ROW_LIMIT", "DEFAULT_FOLDS", "DEFAULT_HOLDOUT"]

log = logging.getLogger("automl")

# Azure: cross-validation when the training data has at most this many rows, else a holdout.
CV_ROW_LIMIT = 20_000
DEFAULT_FOLDS = 5
DEFAULT_HOLDOUT = 0.10


@dataclass(frozen=True)
class SplitPlan:
    """What the split needs of the configuration."""

    target: str
    weight_column: str | None = None
    positive_label: str | None = None
    seed: int = 0
    test_size: float | None = None
    validation_data: bool = False  # a validation table was given
    n_cross_validations: int | None = None
    validation_size: float | None = None
    budget_minutes: float = 360.0  # for the fold count the budget affords (tasks.budget)
    concurrency: int = 1

    @classmethod
    def of(cls, config: AutoMLConfig) -> SplitPlan:
        return cls(config.target, config.weight_column, config.positive_label,
                   config.random_state, config.test_size, config.validation_data is not None,
                   config.n_cross_validations, config.validation_size,
                   config.experiment_timeout_minutes, config.concurrency)

    @property
    def chosen(self) -> bool:
        """Whether the user chose the validation scheme."""
        return (self.validation_data or self.n_cross_validations is not None
                or self.validation_size is not None)

    def scheme(self, n_rows: int) -> tuple[str, float]:
        """Which split to use (given, cv or holdout, and the folds or the validation share),
        with Azure's rule when the user chose none."""
        if self.validation_data:
            return "given", 0.0
        if self.n_cross_validations is not None:
            return "cv", self.n_cross_validations
        if self.validation_size is not None:
            return "holdout", self.validation_size
        if n_rows <= CV_ROW_LIMIT:
            return "cv", DEFAULT_FOLDS
        return "holdout", DEFAULT_HOLDOUT

    def why(self, n_rows: int) -> str:
        if self.chosen:
            return "as configured"
        sign = "<=" if n_rows <= CV_ROW_LIMIT else ">"
        return f"because the training data has {n_rows:,} rows ({sign} {CV_ROW_LIMIT:,})"


def split_data(
    plan: SplitPlan,
    profile: Profile,
    frame: pd.DataFrame,
    validation: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
) -> tuple[SearchData, HeldOut | None]:
    classify = profile.task == "classification"
    if plan.test_size is not None:
        frame, test = train_test_split(
            frame, test_size=plan.test_size, random_state=plan.seed,
            stratify=_stratify(frame[plan.target]) if classify else None,
        )
    held_out = _held_out(plan, test) if test is not None else None
    n_train = len(frame)
    check_budget(plan.budget_minutes, n_train, _work_per_row(profile, classify))
    scheme, value, why = _scheme(plan, profile, n_train, classify)
    rows = np.arange(n_train)
    frame, folds, label = _folds(plan, scheme, value, frame, validation, rows, classify)
    log.info("validation: %s on %d rows%s", label, n_train,
             f", test set of {len(held_out.X)} rows" if held_out else "")
    frame = frame.reset_index(drop=True)
    y = frame[plan.target].to_numpy()
    classes = np.unique(y) if classify else None
    return SearchData(
        X=frame.drop(columns=[c for c in (plan.target, plan.weight_column) if c]),
        y=y,
        weights=_weights(plan, frame),
        folds=folds,
        refit_rows=rows,
        scheme=label,
        task=profile.task,
        classes=classes,
        y_range=_range(y) if not classify else 1.0,
        positive=_positive(classes, plan.positive_label),
        why=why,
    ), held_out


def _work_per_row(profile: Profile, classify: bool) -> int:
    """A fit's work per row for the budget's estimates: columns x outputs (classes above two)."""
    outputs = len(profile.class_counts) if classify and len(profile.class_counts) > 2 else 1
    return profile.n_features * outputs


def _scheme(
    plan: SplitPlan, profile: Profile, n_train: int, classify: bool
) -> tuple[str, float, str]:
    """The scheme, its folds or validation share, and why; fewer folds when the budget is short
    for the data and the user chose no fold count."""
    scheme, value = plan.scheme(n_train)
    why = plan.why(n_train)
    if scheme == "cv" and plan.n_cross_validations is None:
        folds, shorter = budget_folds(int(value), n_train, _work_per_row(profile, classify),
                                      plan.budget_minutes, plan.concurrency)
        scheme, value = ("cv", folds) if folds > 1 else ("holdout", DEFAULT_HOLDOUT)
        why = shorter or why
    return scheme, value, why


def _folds(
    plan: SplitPlan,
    scheme: str,
    value: float,
    frame: pd.DataFrame,
    validation: pd.DataFrame | None,
    rows: np.ndarray,
    classify: bool,
) -> tuple[pd.DataFrame, tuple[tuple[np.ndarray, np.ndarray], ...], str]:
    """The rows (with a given validation table appended), the (fit rows, validation rows) of
    each fold, and the scheme's name."""
    n_train = len(frame)
    y_train = frame[plan.target].to_numpy()
    if scheme == "given":
        frame = pd.concat([frame, validation], ignore_index=True)
        return frame, ((rows, np.arange(n_train, len(frame))),), "given validation data"
    if scheme == "cv":
        splitter = (StratifiedKFold if classify else KFold)(int(value), shuffle=True,
                                                            random_state=plan.seed)
        with warnings.catch_warnings():  # a class rarer than the folds: the guardrails said so
            warnings.simplefilter("ignore", UserWarning)
            folds = tuple(splitter.split(rows, y_train if classify else None))
        return frame, folds, f"{int(value)}-fold cross-validation"
    fit_rows, valid_rows = train_test_split(
        rows, test_size=float(value), random_state=plan.seed,
        stratify=_stratify(y_train) if classify else None,
    )
    return frame, ((np.sort(fit_rows), np.sort(valid_rows)),), f"{float(value):.0%} holdout"


def _weights(plan: SplitPlan, frame: pd.DataFrame) -> np.ndarray | None:
    if plan.weight_column is None:
        return None
    weights: np.ndarray = frame[plan.weight_column].to_numpy(dtype=float)
    return weights


def _held_out(plan: SplitPlan, test: pd.DataFrame) -> HeldOut:
    test = test.reset_index(drop=True)
    drop = [c for c in (plan.target, plan.weight_column) if c and c in test.columns]
    return HeldOut(test.drop(columns=drop), test[plan.target].to_numpy(), _weights(plan, test))


def _stratify(y: pd.Series | np.ndarray) -> pd.Series | np.ndarray | None:
    """Stratify when every class can be split (two rows or more), else shuffle plainly."""
    counts = pd.Series(y).value_counts()
    if counts.min() >= 2:
        return y
    log.warning("class %r has a single row: the split is not stratified", counts.idxmin())
    return None


def _positive(classes: np.ndarray | None, label: str | None) -> int:
    if classes is None or label is None:
        return 1
    return [str(c) for c in classes].index(str(label))


def _range(y: np.ndarray) -> float:
    spread = float(np.max(y) - np.min(y))
    return spread if spread > 0 else 1.0
