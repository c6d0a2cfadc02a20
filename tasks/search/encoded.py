"""The folds as a trial worker featurized them, kept for the trials that come after.

A family's preprocessing depends on the fold and on a few traits of the family (scaling, one-hot
of small integer sets: pipeline.preprocessing_key), not on the trial's parameters. Fitting it
again for every trial is most of a short trial's time: on a 45,000-row table with nine text
columns, 0.7 s of a 1.3 s LightGBM trial and of a 0.9 s logistic regression. So a worker
featurizes each (fold, key) once, in the model input's float32, and later trials of any family
sharing the key fit their model on the kept matrices. Kept up to CACHE_MB, the least recently
used dropped first; the flow's refit is not cached (it runs once).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.models.pipeline import thread_cap

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from tasks.data.sets import SearchData
    from tasks.types import Array

__all__ = ["EncodedFold", "encoded_fold", "CACHE_MB"]

CACHE_MB = 256.0


@dataclass(frozen=True)
class EncodedFold:
    features: ColumnTransformer  # fitted on the fold's fit rows
    fit: Array  # the fit rows, featurized
    valid: Array  # the validation rows, featurized
    seconds: float  # what featurizing took: a trial that reuses it counts it as its own

    @property
    def nbytes(self) -> int:
        return int(self.fit.nbytes + self.valid.nbytes)


class _Cache:
    def __init__(self) -> None:
        self.data: SearchData | None = None
        self.entries: OrderedDict[tuple[object, ...], EncodedFold] = OrderedDict()

    def get(self, data: SearchData, fold: int, key: tuple[object, ...],
            features: ColumnTransformer, n_jobs: int) -> tuple[EncodedFold, bool]:
        if self.data is not data:  # another run's rows (a worker serves one payload)
            self.data, self.entries = data, OrderedDict()
        index = (fold, *key)
        if index in self.entries:
            self.entries.move_to_end(index)
            return self.entries[index], False
        fit_rows, valid_rows = data.folds[fold]
        started = time.perf_counter()
        with thread_cap(n_jobs):
            fit = features.fit_transform(data.X.iloc[fit_rows], data.y[fit_rows])
            valid = features.transform(data.X.iloc[valid_rows])
        entry = EncodedFold(features, fit, valid, time.perf_counter() - started)
        self.entries[index] = entry
        while len(self.entries) > 1 and self._mb() > CACHE_MB:
            self.entries.popitem(last=False)
        return entry, True

    def _mb(self) -> float:
        return sum(e.nbytes for e in self.entries.values()) / 2**20


_CACHE = _Cache()


def encoded_fold(data: SearchData, fold: int, key: tuple[object, ...],
                 features: ColumnTransformer, n_jobs: int) -> tuple[EncodedFold, bool]:
    """Fold `fold` of `data` featurized by `features` (unfitted; fitted here when the fold has
    not been featurized under `key` yet), and whether it was featurized now."""
    return _CACHE.get(data, fold, key, features, n_jobs)
