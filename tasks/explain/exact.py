"""Exact contributions of one fitted pipeline's model step, on its encoded features: the
boosters' own outputs (TreeSHAP inside LightGBM, XGBoost and CatBoost), shap's TreeExplainer for
scikit-learn trees and forests, coefficients for linear models.

Each returns (contributions: rows x encoded features, base value per row, output space), or
None when the model is none of these (the caller then samples)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.preprocessing import StandardScaler

from tasks.models.wrappers import (
    EncodedLabelClassifier,
    NativeCategoryClassifier,
    NativeCategoryRegressor,
)

if TYPE_CHECKING:
    from tasks.types import Array, Estimator

__all__ = ["MARGIN", "PROBABILITY", "VALUE", "exact_contributions"]

# The output spaces an exact method adds up to.
VALUE = "prediction"
MARGIN = "margin (log-odds)"
PROBABILITY = "probability"

Exact = tuple["Array", "Array", str]


def exact_contributions(model: Estimator, Xt: Array, classification: bool) -> Exact | None:
    """The model step's contributions on featurized rows Xt (binary classification: of the
    second class; regression: of the value)."""
    scale, shift = 1.0, 0.0
    if isinstance(model, TransformedTargetRegressor):
        # A standardised target is a linear map of the inner model's output: so are its parts.
        if not isinstance(model.transformer_, StandardScaler):
            return None
        scale = float(np.ravel(model.transformer_.scale_)[0])
        shift = float(np.ravel(model.transformer_.mean_)[0])
        model = model.regressor_
    if isinstance(model, EncodedLabelClassifier):
        model = model.estimator_  # sorted labels coded 0..k-1: the same class order
    X: object = Xt
    if isinstance(model, NativeCategoryClassifier | NativeCategoryRegressor):
        X = model._input(Xt)  # noqa: SLF001 - the booster's own input: codes typed as it was fit
        model = model.estimator_
    found = _by_library(model, X, classification)
    if found is None:
        return None
    values, base, space = found
    return values * scale, base * scale + shift, space


def _by_library(model: Estimator, X: object, classification: bool) -> Exact | None:
    library = type(model).__module__.partition(".")[0]
    n = len(X)  # type: ignore[arg-type]
    space = MARGIN if classification else VALUE
    if library == "lightgbm":
        raw = np.asarray(model.booster_.predict(X, pred_contrib=True), dtype=float)
        return _split(raw, n, space)
    if library == "xgboost":
        import xgboost

        booster = model.get_booster()
        matrix = xgboost.DMatrix(X, feature_types=booster.feature_types, enable_categorical=True)
        raw = np.asarray(booster.predict(matrix, pred_contribs=True), dtype=float)
        return _split(raw, n, space)
    if library == "catboost":
        from catboost import Pool

        pool = Pool(X, cat_features=model.get_cat_feature_indices())
        raw = np.asarray(model.get_feature_importance(pool, type="ShapValues"), dtype=float)
        return _split(raw, n, space)
    forest = type(model).__name__.startswith(("RandomForest", "ExtraTrees"))
    if library == "sklearn" and (hasattr(model, "tree_") or forest):
        return _tree_shap(model, X, classification)
    coef = getattr(model, "coef_", None)
    if library == "sklearn" and coef is not None and hasattr(model, "intercept_") and (
            not classification or hasattr(model, "predict_proba")):
        # Linear: coef * x, around the intercept. Linear families see standardised inputs
        # (mean 0 on the training rows), so each part is the column's pull from its mean.
        w = np.atleast_2d(np.asarray(coef, dtype=float))
        if w.shape[0] != 1:
            return None  # multiclass: the caller samples the predicted class's probability
        values = np.asarray(X, dtype=float) * w[0]
        base = np.full(n, float(np.ravel(model.intercept_)[0]))
        return values, base, space
    return None


def _split(raw: Array, n: int, space: str) -> Exact | None:
    if raw.ndim != 2 or raw.shape[0] != n:
        return None  # multiclass blocks: the caller samples the predicted class instead
    return raw[:, :-1], raw[:, -1], space


def _tree_shap(model: Estimator, X: object, classification: bool) -> Exact | None:
    import shap  # only here: it loads numba (about 1 s)

    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(np.asarray(X, dtype=float), check_additivity=False))
    expected = np.ravel(np.asarray(explainer.expected_value, dtype=float))
    if classification:
        # Classifier forests average leaf probabilities: exact in probability space.
        if values.ndim != 3 or values.shape[2] != 2:
            return None
        values, base = values[:, :, 1], expected[1]
        space = PROBABILITY
    else:
        base, space = expected[0], VALUE
    return values, np.full(values.shape[0], float(base)), space
