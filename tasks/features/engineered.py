"""Features engineered inside one model's pipeline (an option of the boosters, fixed off): after
mljar's golden features and AutoGluon's TabPrep, on the already featurized matrix.

Appended after its columns, so the leading category codes keep their positions:
- golden features: ratios, differences and products of the strongest numeric columns, the few
  that say more about the target than either of their two columns;
- pairs of the most informative category-code columns, crossed into one category each;
- the target mean of each code column and of each cross (scikit-learn's TargetEncoder), cross-
  fitted on the fit rows (a row's value never comes from its own target), learnt on all of them
  for any other rows.
What is built is decided on the fit rows alone, by mutual information on a sample of them.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, cast

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import LabelEncoder, TargetEncoder

from tasks.models.wrapped import InputClassifierMixin

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["EngineeredFeatures", "EngineeredFeaturesClassifier", "EngineeredFeaturesRegressor"]

_OPERATIONS = ("ratio", "difference", "product")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_ENCODER_FOLDS = 5
_CROSS_BASE = 2**31


def _combine(a: Array, b: Array, operation: str) -> Array:
    """One golden feature in float64; NaN where a ratio divides by zero or a value overflows
    float32 (the boosters read NaN as missing)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out: Array
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if operation == "ratio":
            out = np.divide(a, b, out=np.full(len(a), np.nan), where=b != 0)
        elif operation == "difference":
            out = a - b
        else:
            out = a * b
    out[~np.isfinite(out) | (np.abs(out) > _FLOAT32_MAX)] = np.nan
    return out


class EngineeredFeatures(MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """Fits `estimator` on the featurized matrix with engineered columns appended (see the
    module). The first `n_categorical` columns are category codes (-1: a level unseen in
    training); the rest are numbers without NaN."""

    _target_type = "continuous"

    def __init__(
        self,
        estimator: Estimator,
        n_categorical: int = 0,
        n_strongest: int = 4,
        n_golden: int = 5,
        n_crossed: int = 3,
        sample_rows: int = 2000,
        random_state: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_categorical = n_categorical
        self.n_strongest = n_strongest
        self.n_golden = n_golden
        self.n_crossed = n_crossed
        self.sample_rows = sample_rows
        self.random_state = random_state

    def _scores(self, columns: Array, y: Array, discrete: bool) -> Array:
        """Mutual information of each column with the target."""
        columns = np.nan_to_num(columns, nan=0.0)
        if self._target_type == "continuous":
            return np.asarray(mutual_info_regression(
                columns, y, discrete_features=discrete, random_state=self.random_state))
        return np.asarray(mutual_info_classif(
            columns, y, discrete_features=discrete, random_state=self.random_state))

    def _choose_golden(self, X: Array, y: Array) -> list[tuple[int, int, str]]:
        """(column, column, operation) of the golden features kept, strongest first."""
        numeric = [j for j in range(self.n_categorical, X.shape[1])
                   if len(np.unique(X[:, j])) > 2]  # missing flags and 0/1 columns combine badly
        if len(numeric) < 2 or self.n_golden < 1:
            return []
        single = dict(zip(numeric, self._scores(X[:, numeric], y, discrete=False), strict=True))
        strongest = sorted((j for j in numeric if single[j] > 0), key=lambda j: -single[j])
        # One direction of a ratio: a tree splits b / a where it would split a / b.
        candidates = [(a, b, op) for a, b in itertools.combinations(strongest[:self.n_strongest], 2)
                      for op in _OPERATIONS]
        if not candidates:
            return []
        values = np.column_stack([_combine(X[:, a], X[:, b], op) for a, b, op in candidates])
        scores = self._scores(values, y, discrete=False)
        # Kept only when it says more than either of its columns: a tree finds those alone.
        better = [(s, c) for s, c in zip(scores, candidates, strict=True)
                  if s > max(single[c[0]], single[c[1]])]
        return [c for _, c in sorted(better, key=lambda sc: -sc[0])[:self.n_golden]]

    def _choose_crossed(self, X: Array, y: Array) -> list[tuple[int, int]]:
        codes = [j for j in range(self.n_categorical) if len(np.unique(X[:, j])) > 1]
        if len(codes) < 2 or self.n_crossed < 2:
            return []
        scores = self._scores(X[:, codes], y, discrete=True)
        informative = [j for _, j in sorted(zip(scores, codes, strict=True), key=lambda s: -s[0])]
        return list(itertools.combinations(sorted(informative[:self.n_crossed]), 2))

    def _categories(self, X: Array) -> Array:
        """The code columns and the crosses, as integer categories for the target encoder."""
        codes = np.asarray(X[:, :self.n_categorical], dtype=np.int64)
        # One integer per pair of levels, -1 (unseen) included; codes stay below 2**31.
        crosses = [(codes[:, a] + 1) * _CROSS_BASE + codes[:, b] + 1 for a, b in self.crossed_]
        return np.column_stack([codes, *crosses]) if crosses else codes

    def _target_encoder(self, y: Array) -> TargetEncoder | None:
        if not self.n_categorical or len(y) < 2 * _ENCODER_FOLDS:
            return None
        classify = self._target_type != "continuous"
        if classify and np.unique(y, return_counts=True)[1].max() < _ENCODER_FOLDS:
            return None  # no class has a row in every fold: nothing to stratify on
        splitter = StratifiedKFold if classify else KFold
        return TargetEncoder(target_type=self._target_type,
                             cv=splitter(_ENCODER_FOLDS, shuffle=True,
                                         random_state=self.random_state))

    def _decide(self, X: Array, y: Array) -> Array:
        """Choose what to build from the fit rows; their target encoding, cross-fitted."""
        rng = np.random.default_rng(self.random_state)
        sample = np.sort(rng.permutation(len(X))[:self.sample_rows])
        scored = y if self._target_type == "continuous" else LabelEncoder().fit_transform(y)
        Xs, ys = X[sample], scored[sample]
        self.golden_ = self._choose_golden(Xs, ys)
        self.crossed_ = self._choose_crossed(Xs, ys)
        self.encoder_ = self._target_encoder(y)
        if self.encoder_ is None:
            return np.zeros((len(X), 0), dtype=np.float32)
        return np.asarray(self.encoder_.fit_transform(self._categories(X), y), dtype=np.float32)

    def transform(self, X: Rows) -> Array:
        """Rows other than the fit rows with the engineered columns appended."""
        values = np.asarray(X, dtype=np.float32)
        encoded = (np.zeros((len(values), 0), dtype=np.float32) if self.encoder_ is None
                   else np.asarray(self.encoder_.transform(self._categories(values)),
                                   dtype=np.float32))
        return self._append(values, encoded)

    def _append(self, X: Array, encoded: Array) -> Array:
        golden = [_combine(X[:, a], X[:, b], op) for a, b, op in self.golden_]
        return np.hstack([X, np.column_stack(golden).astype(np.float32) if golden
                          else np.zeros((len(X), 0), dtype=np.float32), encoded])

    def fit(self, X: Rows, y: Array, **fit_params: object) -> EngineeredFeatures:
        values = np.asarray(X, dtype=np.float32)
        fitted = self._append(values, self._decide(values, np.asarray(y)))
        if "eval_set" in fit_params:  # early stopping's rows: engineered as new rows
            eval_set = cast("list[tuple[Rows, Array]]", fit_params["eval_set"])
            fit_params["eval_set"] = [(self.transform(Xe), ye) for Xe, ye in eval_set]
        self.estimator_ = clone(self.estimator).fit(fitted, y, **fit_params)
        self.n_features_in_ = values.shape[1]
        return self

    def predict(self, X: Rows) -> Array:
        out: Array = np.asarray(self.estimator_.predict(self.transform(X)))
        return out

    @property
    def feature_importances_(self) -> Array:
        importances: Array = np.asarray(self.estimator_.feature_importances_)
        return importances


class EngineeredFeaturesClassifier(InputClassifierMixin, EngineeredFeatures):
    _target_type = "auto"  # binary or multiclass, as TargetEncoder reads the labels

    def _model_input(self, X: Rows) -> Rows:
        return self.transform(X)


class EngineeredFeaturesRegressor(RegressorMixin, EngineeredFeatures):  # type: ignore[misc]
    pass
