"""Split the rows: an optional test set, then holdout, k-fold CV or a given validation set."""

from __future__ import annotations

import hashlib

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from tasks.config import DEFAULT_HOLDOUT, AutoMLConfig
from tasks.guardrails import Profile

__all__ = ["SearchData", "HeldOut", "split_data", "budget_folds"]

log = logging.getLogger("automl")


@dataclass(frozen=True)
class HeldOut:
    """Rows never seen by the search: the test set."""

    X: pd.DataFrame
    y: np.ndarray
    weights: np.ndarray | None


@dataclass(frozen=True)
class SearchData:
    """The rows every trial sees, with the folds; built once per run and shared by all trials."""

    X: pd.DataFrame
    y: np.ndarray  # labels or values as given
    weights: np.ndarray | None
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]  # (fit rows, validation rows)
    refit_rows: np.ndarray  # the rows the final model is trained on
    scheme: str
    task: str
    classes: np.ndarray | None  # sorted labels; codes index into them
    y_range: float  # normalises RMSE and MAE, as Azure does
    positive: int = 1  # code of the positive class for binary metrics
    why: str = ""  # why this scheme, for the guardrail report, when the budget chose it

    @property
    def valid_rows(self) -> np.ndarray:
        return np.concatenate([valid for _, valid in self.folds])

    @property
    def y_valid(self) -> np.ndarray:
        """Validation targets in prediction order: class codes, or values."""
        y = self.y[self.valid_rows]
        return np.searchsorted(self.classes, y) if self.classes is not None else y

    @property
    def weights_valid(self) -> np.ndarray | None:
        return None if self.weights is None else self.weights[self.valid_rows]

    def digest(self) -> str:
        """Content hash of the rows, targets and folds: a resumed search must see the same."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_array(np.asarray(self.y, dtype=object)).tobytes())
        for fit, valid in self.folds:
            h.update(np.asarray(fit).tobytes())
            h.update(np.asarray(valid).tobytes())
        return h.hexdigest()[:16]


def split_data(
    config: AutoMLConfig,
    profile: Profile,
    frame: pd.DataFrame,
    validation: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
) -> tuple[SearchData, HeldOut | None]:
    seed = config.random_state
    classify = profile.task == "classification"
    if config.test_size is not None:
        frame, test = train_test_split(
            frame,
            test_size=config.test_size,
            random_state=seed,
            stratify=_stratify(frame[config.target]) if classify else None,
        )
    held_out = _held_out(config, test) if test is not None else None
    n_train = len(frame)
    scheme, value = config.validation_scheme(n_train)
    why = ""
    if scheme == "cv" and config.n_cross_validations is None:
        outputs = len(profile.class_counts) if classify and len(profile.class_counts) > 2 else 1
        folds, why = budget_folds(int(value), n_train, profile.n_features * outputs, config)
        scheme, value = ("cv", folds) if folds > 1 else ("holdout", DEFAULT_HOLDOUT)
    rows = np.arange(n_train)
    y_train = frame[config.target].to_numpy()
    if scheme == "given":
        frame = pd.concat([frame, validation], ignore_index=True)
        folds = ((rows, np.arange(n_train, len(frame))),)
        label = "given validation data"
    elif scheme == "cv":
        splitter = (StratifiedKFold if classify else KFold)(int(value), shuffle=True, random_state=seed)
        with warnings.catch_warnings():  # a class rarer than the folds: the guardrails said so
            warnings.simplefilter("ignore", UserWarning)
            folds = tuple(splitter.split(rows, y_train if classify else None))
        label = f"{int(value)}-fold cross-validation"
    else:
        fit_rows, valid_rows = train_test_split(
            rows, test_size=float(value), random_state=seed,
            stratify=_stratify(y_train) if classify else None,
        )
        folds = ((np.sort(fit_rows), np.sort(valid_rows)),)
        label = f"{float(value):.0%} holdout"
    log.info("validation: %s on %d rows%s", label, n_train,
             f", test set of {len(held_out.X)} rows" if held_out else "")
    frame = frame.reset_index(drop=True)
    y = frame[config.target].to_numpy()
    drop = [c for c in (config.target, config.weight_column) if c]
    classes = np.unique(y) if classify else None
    data = SearchData(
        X=frame.drop(columns=drop),
        y=y,
        weights=_weights(config, frame),
        folds=folds,
        refit_rows=rows,
        scheme=label,
        task=profile.task,
        classes=classes,
        y_range=_range(y) if not classify else 1.0,
        positive=_positive(classes, config.positive_label),
        why=why,
    )
    return data, held_out


# Seconds a default boosting fit (the portfolio's first trial) takes: FIT_SECONDS plus
# SECONDS_PER_WORK per fit row x encoded column x output (the classes, above two). Measured on 2
# cores, one thread a fit, over nine shared datasets: 0.3-1.0 microseconds (letter 3.3 s a fold,
# adult 0.7 s, wine_quality 0.5 s). An order of magnitude is all the choice below needs.
FIT_SECONDS = 0.05
SECONDS_PER_WORK = 0.6e-6
# What the budget should buy: at least this many trials (the portfolio and the families'
# defaults are about 16), after start-up, the refit and registration (about 15 s) and the reserve.
MIN_TRIALS = 20
OVERHEAD_SECONDS = 15.0


def budget_folds(folds: int, n_rows: int, work_per_row: int, config: AutoMLConfig) -> tuple[int, str]:
    """Cheap fidelity where the budget is short for the data: the most folds among the default,
    3 and 1 (a holdout) with which MIN_TRIALS trials fit in the search's share of
    experiment_timeout_minutes, and why fewer than the default, if so."""
    budget = config.experiment_timeout_minutes * 60
    search = budget - max(5.0, 0.1 * budget) - OVERHEAD_SECONDS

    def trial_seconds(k: int) -> float:
        fit_rows = n_rows * (k - 1) / k if k > 1 else n_rows * (1 - DEFAULT_HOLDOUT)
        return k * (FIT_SECONDS + SECONDS_PER_WORK * fit_rows * work_per_row)

    for k in sorted({folds, min(folds, 3)}, reverse=True):
        if MIN_TRIALS * trial_seconds(k) / config.concurrency <= search:
            break
    else:
        k = 1
    if k == folds:
        return folds, ""
    return k, (f"because a {folds}-fold trial would take about {trial_seconds(folds):.0f} s on "
               f"this data, and the {config.experiment_timeout_minutes:g}-minute budget should buy "
               f"at least {MIN_TRIALS} trials")


def _weights(config: AutoMLConfig, frame: pd.DataFrame) -> np.ndarray | None:
    if config.weight_column is None:
        return None
    return frame[config.weight_column].to_numpy(dtype=float)


def _held_out(config: AutoMLConfig, test: pd.DataFrame) -> HeldOut:
    test = test.reset_index(drop=True)
    drop = [c for c in (config.target, config.weight_column) if c and c in test.columns]
    return HeldOut(test.drop(columns=drop), test[config.target].to_numpy(), _weights(config, test))


def _stratify(y: Any) -> Any:
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
