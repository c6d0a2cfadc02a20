"""The final model's ensembles as estimators: Azure's VotingEnsemble (weighted soft voting) and
StackEnsemble (a meta-learner on the members' outputs). Members are whole pipelines. Pickled models
name these classes: module-level, names kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from threadpoolctl import threadpool_info, threadpool_limits

from tasks.cores import available_cores
from tasks.models.predict import class_codes, scale_probabilities

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["EnsembleClassifier", "EnsembleRegressor", "StackEnsembleClassifier",
           "StackEnsembleRegressor", "stack_features"]


def _fit_members(
    ensemble: _WeightedEnsemble | _Stack, X: Rows, y: Array, sample_weight: Array | None
) -> None:
    """The members side by side in threads, one per core: the model libraries fit outside the
    GIL, and a boosting member fits on one thread (families.openmp_threads).

    OpenMP's thread count is a per-thread setting: a new thread starts from the library's
    default (every core), not from the caller's cap. Each fitting thread takes the caller's caps
    again; without them letter's three-member refit took 42.6 s instead of 11 s alone (a
    HistGradientBoosting with two passive OpenMP threads beside the other members)."""
    routed = {} if sample_weight is None else {"model__sample_weight": sample_weight}
    members = [est for _, est in ensemble.estimators]
    threads = min(len(members), available_cores())
    caps = {pool["user_api"]: pool["num_threads"] for pool in threadpool_info()}

    def fit(estimator: Estimator) -> Estimator:
        with threadpool_limits(limits=caps):
            return estimator.fit(X, y, **routed)

    ensemble.estimators_ = Parallel(n_jobs=threads, prefer="threads")(
        delayed(fit)(clone(est)) for est in members
    )
    names = getattr(ensemble.estimators_[0], "feature_names_in_", None)
    if names is not None:
        ensemble.feature_names_in_ = names


def _decided(model: EnsembleClassifier | StackEnsembleClassifier, proba: Array) -> Array:
    """The labels of proba: at the model's decision threshold on its positive class's
    probability (tasks.final.thresholds), else the most likely class."""
    # Models pickled before thresholds existed have none.
    threshold = getattr(model, "threshold", None)
    positive = 1 if threshold is None else int(np.flatnonzero(model.classes_ == model.pos_label)[0])
    labels: Array = model.classes_[class_codes(proba, threshold, positive)]
    return labels


def _aligned_proba(est: Estimator, X: Rows, classes: Array) -> Array:
    """A member's probabilities in the order of `classes` (zeros for a class it never saw)."""
    proba = np.zeros((len(X), len(classes)))
    proba[:, np.searchsorted(classes, est.classes_)] = est.predict_proba(X)
    return proba


# scikit-learn ships no types, so its base classes are Any to mypy: subclassing them is the point.
class _WeightedEnsemble(BaseEstimator):  # type: ignore[misc]
    """Members are whole pipelines (each with its own preprocessing), averaged with weights."""

    estimators_: list[Estimator]  # the fitted members
    feature_names_in_: Array

    def __init__(self, estimators: list[tuple[str, Estimator]], weights: list[float],
                 temperature: float = 1.0) -> None:
        self.estimators = estimators
        self.weights = weights
        self.temperature = temperature  # classes only (tasks.final.calibration)

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> _WeightedEnsemble:
        _fit_members(self, X, y, sample_weight)
        return self

    def _average(self, outputs: list[Array]) -> Array:
        return np.average(np.stack(outputs), axis=0, weights=np.asarray(self.weights, float))


class EnsembleClassifier(ClassifierMixin, _WeightedEnsemble):  # type: ignore[misc]
    """Soft voting with Caruana weights (Azure's VotingEnsemble). With a `threshold`, predict
    labels `pos_label` where its probability reaches it (predict_proba is unchanged).

    Not scikit-learn's FixedThresholdClassifier around the model: it refuses sample weights
    unless metadata routing is switched on for the whole process."""

    classes_: Array

    def __init__(self, estimators: list[tuple[str, Estimator]], weights: list[float],
                 temperature: float = 1.0, threshold: float | None = None,
                 pos_label: object = None) -> None:
        super().__init__(estimators, weights, temperature)
        self.threshold = threshold
        self.pos_label = pos_label

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> EnsembleClassifier:
        super().fit(X, y, sample_weight)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Rows) -> Array:
        proba = self._average([_aligned_proba(est, X, self.classes_) for est in self.estimators_])
        # Models pickled before temperatures existed have none.
        return scale_probabilities(proba, getattr(self, "temperature", 1.0))

    def predict(self, X: Rows) -> Array:
        return _decided(self, self.predict_proba(X))


class EnsembleRegressor(RegressorMixin, _WeightedEnsemble):  # type: ignore[misc]
    """Weighted average of the members' predictions (Azure's VotingEnsemble)."""

    def predict(self, X: Rows) -> Array:
        return self._average([np.asarray(est.predict(X), float) for est in self.estimators_])


def stack_features(predictions: list[Array], task: str) -> Array:
    """The meta-learner's inputs: each member's log-odds (binary) or log-probabilities, or its
    predicted values. Logs, because a linear model on them combines members multiplicatively,
    the way probabilities from independent evidence combine."""
    if task == "regression":
        return np.column_stack([np.asarray(p, float) for p in predictions])
    logs: list[Array] = []
    for proba in predictions:
        clipped = np.clip(np.asarray(proba, float), 1e-6, 1 - 1e-6)
        binary = clipped.shape[1] == 2
        logs.append(np.log(clipped[:, 1:] / clipped[:, :1]) if binary else np.log(clipped))
    return np.hstack(logs)


class _Stack(BaseEstimator):  # type: ignore[misc]
    """Members are whole pipelines refit on all rows; the meta-learner arrives already fitted on
    the members' out-of-fold predictions (FrozenEstimator, so cloning keeps it fitted)."""

    estimators_: list[Estimator]  # the fitted members
    feature_names_in_: Array

    def __init__(self, estimators: list[tuple[str, Estimator]], final_estimator: Estimator) -> None:
        self.estimators = estimators
        self.final_estimator = final_estimator


class StackEnsembleClassifier(ClassifierMixin, _Stack):  # type: ignore[misc]
    """Azure's StackEnsemble for classification: logistic regression on members' probabilities.

    `classes` are the labels the meta-learner's integer codes 0..K-1 stand for; `threshold` and
    `pos_label` as in EnsembleClassifier."""

    classes_: Array

    def __init__(
        self, estimators: list[tuple[str, Estimator]], final_estimator: Estimator, classes: Array,
        temperature: float = 1.0, threshold: float | None = None, pos_label: object = None,
    ) -> None:
        super().__init__(estimators, final_estimator)
        self.classes = classes
        self.temperature = temperature
        self.threshold = threshold
        self.pos_label = pos_label

    def fit(
        self, X: Rows, y: Array, sample_weight: Array | None = None
    ) -> StackEnsembleClassifier:
        _fit_members(self, X, y, sample_weight)
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X: Rows) -> Array:
        members = [_aligned_proba(est, X, self.classes_) for est in self.estimators_]
        meta = self.final_estimator
        proba = np.zeros((len(X), len(self.classes_)))
        meta_proba = meta.predict_proba(stack_features(members, "classification"))
        proba[:, np.asarray(meta.classes_, int)] = meta_proba
        return scale_probabilities(proba, getattr(self, "temperature", 1.0))

    def predict(self, X: Rows) -> Array:
        return _decided(self, self.predict_proba(X))


class StackEnsembleRegressor(RegressorMixin, _Stack):  # type: ignore[misc]
    """Azure's StackEnsemble for regression: non-negative linear weights on members' values."""

    def fit(self, X: Rows, y: Array, sample_weight: Array | None = None) -> StackEnsembleRegressor:
        _fit_members(self, X, y, sample_weight)
        return self

    def predict(self, X: Rows) -> Array:
        members = [np.asarray(est.predict(X), float) for est in self.estimators_]
        values: Array = self.final_estimator.predict(stack_features(members, "regression"))
        return values
