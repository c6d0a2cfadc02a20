"""The few estimator wrappers the candidates need; everything else is plain scikit-learn."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder
from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "CalibratedClassifier", "EncodedLabelClassifier", "EnsembleClassifier", "EnsembleRegressor",
    "StackEnsembleClassifier", "StackEnsembleRegressor", "stack_features",
    "EARLY_STOPPING_ROUNDS", "early_stopping", "rounds_used",
]

# A boosting model stops adding rounds once its loss on the validation rows has not improved for
# this many (LightGBM's and XGBoost's own mechanism; AutoGluon stops on its holdout the same way).
EARLY_STOPPING_ROUNDS = 50


def early_stopping(model: Any, X_eval: Any, y_eval: Any, watch: str | None = None
                   ) -> dict[str, Any] | None:
    """The fit arguments that stop a LightGBM or XGBoost model early on (X_eval, y_eval), or
    None for a model without boosting rounds. `watch` is what is watched: "auc" (both libraries
    call it so), else the model's own objective (log loss, squared error)."""
    inner = model.estimator if isinstance(model, EncodedLabelClassifier) else model
    library = type(inner).__module__.partition(".")[0]
    if library == "lightgbm":
        import lightgbm

        stop = lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False)
        metric = {"eval_metric": watch} if watch else {}
        # eval_set, deprecated in LightGBM 4.7 for eval_X/eval_y; but LGBMClassifier 4.7 does not
        # encode eval_y's labels (string labels fail), so the old argument stays for now.
        return {"eval_set": [(X_eval, y_eval)], "callbacks": [stop], **metric}
    if library == "xgboost":
        inner.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS,
                         **({"eval_metric": watch} if watch else {}))
        return {"eval_set": [(X_eval, y_eval)], "verbose": False}
    return None


def rounds_used(model: Any) -> int | None:
    """How many boosting rounds a model fitted with early_stopping kept, or None."""
    inner = model.estimator_ if isinstance(model, EncodedLabelClassifier) else model
    best = getattr(inner, "best_iteration_", None)  # LightGBM: a count
    if best is None and type(inner).__module__.startswith("xgboost"):
        best = getattr(inner, "best_iteration", None)  # XGBoost: an index
        best = None if best is None else best + 1
    return int(best) if best else None


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
