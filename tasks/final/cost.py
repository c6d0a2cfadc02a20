"""What the final model costs to use: predict time per 1,000 rows and for one row, and its
pickled size, measured once after the refit on the model a user gets (ensembles included)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from tasks.models.pipeline import thread_cap
from tasks.models.predict import predict_scores
from tasks.search.evaluate import one_row_ms, pickled_size

if TYPE_CHECKING:
    import pandas as pd

    from tasks.types import Array, Estimator

__all__ = ["InferenceCost", "measure_cost"]

BATCH_ROWS = 1000  # a bounded batch: the test set may be large, and this runs inside the budget


@dataclass(frozen=True)
class InferenceCost:
    predict_ms_per_1k_rows: float
    predict_ms_per_row: float
    model_bytes: int

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def measure_cost(model: Estimator, X: pd.DataFrame, classes: Array | None,
                 n_jobs: int) -> InferenceCost:
    """Time predicting up to BATCH_ROWS raw rows of `X` and one row, the way trials are timed
    (tasks.search.evaluate), with the threads a trial had, so the two compare."""
    batch = X.iloc[:BATCH_ROWS]
    with thread_cap(n_jobs):
        started = time.perf_counter()
        predict_scores(model, batch, classes)
        seconds = time.perf_counter() - started
    return InferenceCost(seconds / len(batch) * 1e6, one_row_ms(model, X.iloc[:1], classes, n_jobs),
                         pickled_size(model))
