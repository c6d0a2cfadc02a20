"""What the Python API's fit and predict are given, turned into what the flow reads.

A DataFrame or array (with y and sample_weight as columns beside it) becomes a table held in this
process under a `dataframe://` URL (tasks.data.memory); a path or URL passes through as it is.
Every mistake in the arguments raises a one-sentence DataError or ConfigError before any training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tasks.errors import ConfigError, DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["FitInputs", "fit_inputs", "predict_frame"]

WEIGHT_COLUMN = "sample_weight"  # the column fit's sample_weight becomes


@dataclass(frozen=True)
class FitInputs:
    """fit's arguments as the config's data knobs, and the in-memory tables its URLs name."""

    target: str | None
    training_data: str
    validation_data: str | None
    weight_column: str | None
    feature_names: list[str] | None  # an in-memory table's features; None for a path
    tables: dict[str, pd.DataFrame]


def fit_inputs(
    X: object, y: object, X_valid: object, y_valid: object, sample_weight: object, *,
    feature_names: Sequence[str] | None, target: str | None, estimator_target: str | None,
    weight_column: str | None,
) -> FitInputs:
    """fit's tables; target and weight_column as fit and the estimator's constructor gave them."""
    target = _target_name(target, estimator_target, y)
    if target is None and y is None and not isinstance(X, str | os.PathLike):
        raise DataError(
            "fit was given no target: pass y, or target= naming the column of X to predict"
        )
    train = _Input.of(X, y, target, feature_names, sample_weight, "X", "y")
    if train.frame is not None and sample_weight is not None:
        if weight_column is not None:
            raise ConfigError(
                f"weight_column={weight_column!r} and sample_weight were both given; "
                "pass the weights one way"
            )
        weight_column = train.weight_column
    validation = None
    if X_valid is not None:
        # An array's columns are the training columns; a DataFrame names its own.
        names = None if isinstance(X_valid, pd.DataFrame) else train.feature_names
        validation = _Input.of(X_valid, y_valid, target, names, None, "X_valid", "y_valid")
        if validation.frame is not None and weight_column == train.weight_column:
            validation = validation.with_weights(weight_column)
    elif y_valid is not None:
        raise DataError("y_valid was given without X_valid; pass both or neither")
    tables = {table.url: table.frame for table in (train, validation)
              if table is not None and table.frame is not None}
    return FitInputs(
        target=target or train.target, training_data=train.url,
        validation_data=None if validation is None else validation.url,
        weight_column=weight_column, feature_names=train.feature_names, tables=tables,
    )


def predict_frame(X: object, names: list[str]) -> pd.DataFrame:
    """The rows predict is given, as a table with the training columns `names`."""
    if isinstance(X, pd.DataFrame):
        return _frame(X, None, "X")
    shape = np.shape(X)  # type: ignore[call-overload]
    if len(shape) != 2 or shape[1] != len(names):
        raise DataError(
            f"X has shape {shape}, and this model takes a 2-D array of {len(names)} "
            f"columns ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''}); "
            "pass rows with the training columns"
        )
    return _frame(X, names, "X")


def _target_name(target: str | None, estimator_target: str | None, y: object) -> str | None:
    if target is not None and estimator_target is not None and target != estimator_target:
        raise ConfigError(
            f"fit's target={target!r} differs from the estimator's target={estimator_target!r}; "
            "name the target once"
        )
    name = getattr(y, "name", None) if y is not None else None
    return target or estimator_target or (None if name is None else str(name))


class _Input:
    """One table given to fit: in memory (frame, held under url) or a path or URL."""

    def __init__(self, url: str, frame: pd.DataFrame | None, target: str | None,
                 feature_names: list[str] | None, weight_column: str | None) -> None:
        self.url, self.frame, self.target = url, frame, target
        self.feature_names, self.weight_column = feature_names, weight_column

    @classmethod
    def of(
        cls, X: object, y: object, target: str | None,
        feature_names: Sequence[str] | None, weight: object, x_name: str, y_name: str,
    ) -> _Input:
        if isinstance(X, str | os.PathLike):
            for given, name in ((y, y_name), (weight, "sample_weight")):
                if given is not None:
                    raise DataError(
                        f"{x_name} is the path {os.fspath(X)!r}, so {name} must be None: the "
                        f"table holds the target (target=) and the weights (weight_column=)"
                    )
            return cls(os.fspath(X), None, target, None, None)
        frame = _frame(X, feature_names, x_name)
        features = [str(c) for c in frame.columns]
        if y is not None:
            name = target or "target"
            if name in frame.columns:
                raise DataError(
                    f"{x_name} already has a column named {name!r}, the name given to {y_name}; "
                    f"pass target={name!r} without {y_name}, or name {y_name} otherwise"
                )
            frame = frame.assign(**{name: _column(y, len(frame), y_name, x_name)})
            target = name
        elif target is not None:
            features = [c for c in features if c != target]
        weight_column = None
        if weight is not None:
            weight_column = _free_name(WEIGHT_COLUMN, frame.columns)
            frame = frame.assign(**{weight_column: _column(weight, len(frame), "sample_weight",
                                                           x_name)})
        from tasks.data.memory import table_url

        role = "train" if x_name == "X" else "valid"
        return cls(table_url(frame, role), frame, target, features, weight_column)

    def with_weights(self, column: str | None) -> _Input:
        """Validation rows weigh 1 each when the training rows carry sample_weight."""
        if column is None or self.frame is None or column in self.frame.columns:
            return self
        frame = self.frame.assign(**{column: 1.0})
        from tasks.data.memory import table_url

        return _Input(table_url(frame, "valid"), frame, self.target, self.feature_names, None)


def _frame(X: object, names: Sequence[str] | None, x_name: str) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        if names is not None:
            raise DataError(
                f"feature_names was given, and {x_name} is a DataFrame with its own column "
                "names; drop feature_names"
            )
        if not all(isinstance(c, str) for c in X.columns):
            return X.rename(columns=str)  # the flow names columns by text, as a file would
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise DataError(
            f"{x_name} must be 2-D (rows by columns), got an array of shape {array.shape}; "
            "reshape a single feature with X.reshape(-1, 1)"
        )
    columns = [f"x{i}" for i in range(array.shape[1])] if names is None else list(names)
    if len(columns) != array.shape[1]:
        raise DataError(
            f"feature_names has {len(columns)} names and {x_name} has {array.shape[1]} columns; "
            "give one name per column"
        )
    return pd.DataFrame(array, columns=columns).infer_objects()


def _column(values: object, rows: int, name: str, x_name: str) -> np.ndarray:
    array = np.asarray(values.to_numpy() if isinstance(values, pd.Series | pd.DataFrame)
                       else values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.ravel()
    if array.ndim != 1:
        raise DataError(f"{name} must be one value per row, got an array of shape {array.shape}")
    if len(array) != rows:
        raise DataError(
            f"{x_name} has {rows} rows and {name} has {len(array)} values; pass one value per "
            f"row of {x_name}"
        )
    return array


def _free_name(name: str, taken: pd.Index) -> str:
    while name in taken:
        name = f"_{name}"
    return name
