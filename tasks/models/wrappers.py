"""Estimator wrappers some families need: label codes for XGBoost, probabilities for models
that have none, categories passed as categories (the boosting libraries). Pickled models name
these classes: module-level, names kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    clone,
)
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelEncoder

from tasks.features.engineered import EngineeredFeatures
from tasks.models.wrapped import InputClassifierMixin

if TYPE_CHECKING:
    from tasks.types import Array, Estimator, Rows

__all__ = ["CalibratedClassifier", "EncodedLabelClassifier", "NativeCategoryClassifier",
           "NativeCategoryRegressor", "inner_estimator"]


def inner_estimator(model: Estimator, fitted: bool = False) -> Estimator:
    """The library's estimator inside this module's wrappers (the fitted one with `fitted`)."""
    while isinstance(model, EncodedLabelClassifier | _NativeCategories | EngineeredFeatures):
        model = model.estimator_ if fitted else model.estimator
    return model


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


class _NativeCategories(MetaEstimatorMixin, BaseEstimator):  # type: ignore[misc]
    """Fits an estimator that takes categories natively (CatBoost, LightGBM, XGBoost,
    HistGradientBoosting) on the featurized matrix, whose first `n_categorical` columns are
    category codes (tasks.features.encoders.ordinal_block), telling it they are categories:
    each library its own way. A code of -1 (a level unseen in training) reaches CatBoost as a
    level of its own and the others as a missing value."""

    def __init__(self, estimator: Estimator, n_categorical: int = 0) -> None:
        self.estimator = estimator
        self.n_categorical = n_categorical

    def _library(self) -> str:
        return type(self.estimator).__module__.partition(".")[0]

    def _input(self, X: Rows) -> Rows:
        values = np.asarray(X)
        if self._library() == "catboost":
            # A view, not pandas 3's default copy: the codes become new int columns, the rest
            # stays.
            frame = pd.DataFrame(values, copy=False)
            for column in range(self.n_categorical):
                frame[column] = values[:, column].astype(np.int32)
            return frame
        codes = values[:, :self.n_categorical]
        if self.n_categorical and codes.size and codes.min() < 0:
            values = values.copy()  # only rows with an unseen level cost a copy
            codes = values[:, :self.n_categorical]
            codes[codes < 0] = np.nan
        return values

    def _categorical_args(self, estimator: Estimator, X: Rows) -> dict[str, object]:
        """Tell the estimator which columns are categories: set on it, or the fit arguments."""
        cats = list(range(self.n_categorical))
        library = self._library()
        if library == "catboost":
            return {"cat_features": cats}
        if library == "lightgbm":
            return {"categorical_feature": cats} if cats else {}
        width = np.asarray(X).shape[1]
        if library == "xgboost":
            estimator.set_params(enable_categorical=True,
                                 feature_types=["c"] * len(cats) + ["q"] * (width - len(cats)))
            return {}
        if "categorical_features" not in estimator.get_params():
            return {}  # a forest: codes split as ordered numbers, as AutoGluon's forests take them
        # HistGradientBoosting takes at most max_bins levels per category; a column with more
        # stays an ordered code, which a tree can still split.
        top = np.nanmax(np.asarray(X)[:, :len(cats)], axis=0, initial=-1) if cats else []
        limit = estimator.get_params().get("max_bins", 255)
        mask = np.zeros(width, dtype=bool)
        mask[:len(cats)] = np.asarray(top) < limit
        estimator.set_params(categorical_features=mask if mask.any() else None)
        return {}

    def fit(self, X: Rows, y: Array, **fit_params: object) -> _NativeCategories:
        if "eval_set" in fit_params:
            eval_set = cast("list[tuple[Rows, Array]]", fit_params["eval_set"])
            fit_params["eval_set"] = [(self._input(Xe), ye) for Xe, ye in eval_set]
        estimator = clone(self.estimator)
        known = self._categorical_args(estimator, X)
        self.estimator_ = estimator.fit(self._input(X), y, **known, **fit_params)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Rows) -> Array:
        out: Array = np.asarray(self.estimator_.predict(self._input(X)))
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    @property
    def feature_importances_(self) -> Array:
        importances: Array = np.asarray(self.estimator_.feature_importances_)
        return importances


class NativeCategoryClassifier(InputClassifierMixin, _NativeCategories):
    def _model_input(self, X: Rows) -> Rows:
        return self._input(X)


class NativeCategoryRegressor(RegressorMixin, _NativeCategories):  # type: ignore[misc]
    pass
