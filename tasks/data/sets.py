"""The rows every trial sees and the rows none sees: light types, shared by every stage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SearchData", "HeldOut"]


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
    why: str = ""  # why this scheme (as configured, the rows, the budget): the guardrail report

    @property
    def valid_rows(self) -> np.ndarray:
        return np.concatenate([valid for _, valid in self.folds])

    @property
    def y_valid(self) -> np.ndarray:
        """Validation targets in prediction order: class codes, or values."""
        y: np.ndarray = self.y[self.valid_rows]
        return np.searchsorted(self.classes, y) if self.classes is not None else y

    @property
    def weights_valid(self) -> np.ndarray | None:
        return None if self.weights is None else self.weights[self.valid_rows]

    def split_digest(self) -> str:
        """Content hash of the rows, targets and folds: a resumed search must see the same (not
        the table's digest MLflow records, which is of the table as read)."""
        h = hashlib.sha256()
        h.update(pd.util.hash_pandas_object(self.X, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_array(np.asarray(self.y, dtype=object)).tobytes())
        for fit, valid in self.folds:
            h.update(np.asarray(fit).tobytes())
            h.update(np.asarray(valid).tobytes())
        return h.hexdigest()[:16]
