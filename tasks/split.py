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

from tasks.config import AutoMLConfig
from tasks.guardrails import Profile

__all__ = ["SearchData", "HeldOut", "split_data"]

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
    )
    return data, held_out


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
