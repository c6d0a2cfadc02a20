"""The final model's ensembles as estimators: Azure's VotingEnsemble (weighted soft voting) and
StackEnsemble (a meta-learner on the members' outputs). Members are whole pipelines. Pickled models
name these classes: module-level, names kept."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from threadpoolctl import threadpool_info, threadpool_limits

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "StackEnsembleClassifier",
           "StackEnsembleRegressor", "stack_features"]


def _fit_members(ensemble: Any, X: Any, y: Any, sample_weight: Any) -> None:
    """The members side by side in threads, one per core: the model libraries fit outside the
    GIL, and a boosting member fits on one thread (families.openmp_threads).

    OpenMP's thread count is a per-thread setting: a new thread starts from the library's
    default (every core), not from the caller's cap. Each fitting thread takes the caller's caps
    again; without them letter's three-member refit took 42.6 s instead of 11 s alone (a
    HistGradientBoosting with two passive OpenMP threads beside the other members)."""
    routed = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    members = [est for _, est in ensemble.estimators]
    threads = min(len(members), os.cpu_count() or 1)
    caps = {pool["user_api"]: pool["num_threads"] for pool in threadpool_info()}

    def fit(estimator: Any) -> Any:
        with threadpool_limits(limits=caps):
            return estimator.fit(X, y, **routed)

    ensemble.estimators_ = Parallel(n_jobs=threads, prefer="threads")(
        delayed(fit)(clone(est)) for est in members
    )
    names = getattr(ensemble.estimators_[0], "feature_names_in_", None)
    if names is not None:
        ensemble.feature_names_in_ = names


def _aligned_proba(est: Any, X: Any, classes: np.ndarray) -> np.ndarray:
    """A member's probabilities in the order of `classes` (zeros for a class it never saw)."""
    proba = np.zeros((len(X), len(classes)))
    proba[:, np.searchsorted(classes, est.classes_)] = est.predict_proba(X)
    return proba


class _WeightedEnsemble(BaseEstimator):
    """Members are whole pipelines (each with its own preprocessing), averaged with weights."""

    def __init__(self, estimators: list[tuple[str, Any]], weights: list[float]) -> None:
        self.estimators = estimators
        self.weights = weights

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _WeightedEnsemble:
        _fit_members(self, X, y, sample_weight)
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
        return self._average([_aligned_proba(est, X, self.classes_) for est in self.estimators_])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class EnsembleRegressor(RegressorMixin, _WeightedEnsemble):
    """Weighted average of the members' predictions (Azure's VotingEnsemble)."""

    def predict(self, X: Any) -> np.ndarray:
        return self._average([np.asarray(est.predict(X), float) for est in self.estimators_])


def stack_features(predictions: list[np.ndarray], task: str) -> np.ndarray:
    """The meta-learner's inputs: each member's log-odds (binary) or log-probabilities, or its
    predicted values. Logs, because a linear model on them combines members multiplicatively,
    the way probabilities from independent evidence combine."""
    if task == "regression":
        return np.column_stack([np.asarray(p, float) for p in predictions])
    logs = []
    for proba in predictions:
        clipped = np.clip(np.asarray(proba, float), 1e-6, 1 - 1e-6)
        logs.append(np.log(clipped[:, 1:] / clipped[:, :1]) if clipped.shape[1] == 2 else np.log(clipped))
    return np.hstack(logs)


class _Stack(BaseEstimator):
    """Members are whole pipelines refit on all rows; the meta-learner arrives already fitted on
    the members' out-of-fold predictions (FrozenEstimator, so cloning keeps it fitted)."""

    def __init__(self, estimators: list[tuple[str, Any]], final_estimator: Any) -> None:
        self.estimators = estimators
        self.final_estimator = final_estimator


class StackEnsembleClassifier(ClassifierMixin, _Stack):
    """Azure's StackEnsemble for classification: logistic regression on members' probabilities.

    `classes` are the labels the meta-learner's integer codes 0..K-1 stand for."""

    def __init__(self, estimators: list[tuple[str, Any]], final_estimator: Any, classes: Any) -> None:
        super().__init__(estimators, final_estimator)
        self.classes = classes

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> StackEnsembleClassifier:
        _fit_members(self, X, y, sample_weight)
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        members = [_aligned_proba(est, X, self.classes_) for est in self.estimators_]
        meta = self.final_estimator
        proba = np.zeros((len(X), len(self.classes_)))
        proba[:, np.asarray(meta.classes_, int)] = meta.predict_proba(stack_features(members, "classification"))
        return proba

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class StackEnsembleRegressor(RegressorMixin, _Stack):
    """Azure's StackEnsemble for regression: non-negative linear weights on members' values."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> StackEnsembleRegressor:
        _fit_members(self, X, y, sample_weight)
        return self

    def predict(self, X: Any) -> np.ndarray:
        members = [np.asarray(est.predict(X), float) for est in self.estimators_]
        return self.final_estimator.predict(stack_features(members, "regression"))
