"""The few estimator wrappers the candidates need; everything else is plain scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.preprocessing import LabelEncoder

__all__ = ["EncodedLabelClassifier", "EnsembleClassifier", "EnsembleRegressor"]


class EncodedLabelClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Fits a classifier that only accepts labels 0..K-1 (XGBoost) on labels of any type."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def fit(self, X: Any, y: Any, **fit_params: Any) -> EncodedLabelClassifier:
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.estimator_.feature_importances_


class _WeightedEnsemble(BaseEstimator):
    """Members are whole pipelines (each with its own preprocessing), averaged with weights."""

    def __init__(self, estimators: list[tuple[str, Any]], weights: list[float]) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _WeightedEnsemble:
        routed = {} if sample_weight is None else {"model__sample_weight": sample_weight}
        self.estimators_ = [clone(est).fit(X, y, **routed) for _, est in self.estimators]
        names = getattr(self.estimators_[0], "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_ = names
        return self

    def _average(self, outputs: list[np.ndarray]) -> np.ndarray:
        return np.average(np.stack(outputs), axis=0, weights=np.asarray(self.weights, float))


class EnsembleClassifier(ClassifierMixin, _WeightedEnsemble):
    """Soft voting with Caruana weights (Azure's VotingEnsemble)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EnsembleClassifier:
        super().fit(X, y, sample_weight)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        outputs = []
        for est in self.estimators_:
            proba = np.zeros((len(X), len(self.classes_)))
            proba[:, np.searchsorted(self.classes_, est.classes_)] = est.predict_proba(X)
            outputs.append(proba)
        return self._average(outputs)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class EnsembleRegressor(RegressorMixin, _WeightedEnsemble):
    """Weighted average of the members' predictions (Azure's VotingEnsemble)."""

    def predict(self, X: Any) -> np.ndarray:
        return self._average([np.asarray(est.predict(X), float) for est in self.estimators_])
