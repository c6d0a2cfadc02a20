"""Estimator wrappers some families need: label codes for XGBoost, probabilities for models
that have none. Pickled models name these classes: module-level, names kept."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder

__all__ = ["CalibratedClassifier", "EncodedLabelClassifier"]


class EncodedLabelClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Fits a classifier that only accepts labels 0..K-1 (XGBoost) on labels of any type."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> EncodedLabelClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        if "eval_set" in fit_params:  # XGBoost's early stopping: its validation rows need codes
            fit_params["eval_set"] = [
                (Xe, self.encoder_.transform(ye)) for Xe, ye in fit_params["eval_set"]
            ]
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.estimator_.feature_importances_


class CalibratedClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Class probabilities for a classifier that has none (LinearSVC, kernel SVC, hinge SGD).

    scikit-learn's CalibratedClassifierCV with sigmoid calibration (isotonic overfits below
    ~1,000 rows) on `folds` folds. CalibratedClassifierCV refuses data where a class has fewer
    rows than folds, as a rare class often has in one cross-validation fold, so the folds shrink
    to the rarest class; when a class has a single row, the sigmoids are fitted on the scores of
    the training rows themselves. The folds are shuffled: rows sorted by some column (many files
    are) would otherwise leave whole groups out of every fit.
    """

    def __init__(self, estimator: Any, folds: int = 3, random_state: int | None = None) -> None:
        self.estimator = estimator
        self.folds = folds
        self.random_state = random_state

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CalibratedClassifier:
        rarest = int(np.unique(y, return_counts=True)[1].min())
        cv: StratifiedKFold | list[tuple[np.ndarray, np.ndarray]]
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

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.calibrated_.predict_proba(X)
