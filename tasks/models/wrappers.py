"""Estimator wrappers some families need: label codes for XGBoost, probabilities for models
that have none. Pickled models name these classes: module-level, names kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["CalibratedClassifier", "EncodedLabelClassifier"]


# scikit-learn ships no types, so its base classes are Any to mypy: subclassing them is the point.
class EncodedLabelClassifier(
    ClassifierMixin, MetaEstimatorMixin, BaseEstimator  # type: ignore[misc]
):
    """Fits a classifier that only accepts labels 0..K-1 (XGBoost) on labels of any type."""

    classes_: Array

    def __init__(self, estimator: Estimator) -> None:
        self.estimator = estimator

    def fit(self, X: Rows, y: Array, **fit_params: object) -> EncodedLabelClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        if "eval_set" in fit_params:  # XGBoost's early stopping: its validation rows need codes
            eval_set = cast("list[tuple[Rows, Array]]", fit_params["eval_set"])
            fit_params["eval_set"] = [(Xe, self.encoder_.transform(ye)) for Xe, ye in eval_set]
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        return self

    def predict(self, X: Rows) -> Array:
        labels: Array = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    def predict_proba(self, X: Rows) -> Array:
        proba: Array = self.estimator_.predict_proba(X)
        return proba

    @property
    def feature_importances_(self) -> Array:
        importances: Array = self.estimator_.feature_importances_
        return importances


class CalibratedClassifier(
    ClassifierMixin, MetaEstimatorMixin, BaseEstimator  # type: ignore[misc]
):
    """Class probabilities for a classifier that has none (LinearSVC, kernel SVC, hinge SGD).

    scikit-learn's CalibratedClassifierCV with sigmoid calibration (isotonic overfits below
    ~1,000 rows) on `folds` folds. CalibratedClassifierCV refuses data where a class has fewer
    rows than folds, as a rare class often has in one cross-validation fold, so the folds shrink
    to the rarest class; when a class has a single row, the sigmoids are fitted on the scores of
    the training rows themselves. The folds are shuffled: rows sorted by some column (many files
    are) would otherwise leave whole groups out of every fit.
    """

    classes_: Array

    def __init__(
        self, estimator: Estimator, folds: int = 3, random_state: int | None = None
    ) -> None:
        self.estimator = estimator
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> CalibratedClassifier:
        rarest = int(np.unique(y, return_counts=True)[1].min())
        cv: StratifiedKFold | list[tuple[Array, Array]]
        if rarest >= 2:
            base = clone(self.estimator)
            folds = min(self.folds, rarest)
            cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        else:
            weights = {} if sample_weight is None else {"sample_weight": sample_weight}
            base = FrozenEstimator(clone(self.estimator).fit(X, y, **weights))
            everything = np.arange(len(y))
            cv = [(everything, everything)]  # one "split": the in-sample scores, computed once
        calibrated = CalibratedClassifierCV(base, method="sigmoid", cv=cv)
        self.calibrated_ = calibrated.fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict(self, X: Rows) -> Array:
        labels: Array = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    def predict_proba(self, X: Rows) -> Array:
        proba: Array = self.calibrated_.predict_proba(X)
        return proba
