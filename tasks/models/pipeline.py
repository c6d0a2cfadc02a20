"""Pipelines of a family's estimator behind the preprocessing, fitted with the trial's threads."""

from __future__ import annotations

import inspect
import os
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tasks.features.engineered import EngineeredFeaturesClassifier, EngineeredFeaturesRegressor
from tasks.features.preprocess import build_preprocessor, native_columns
from tasks.models.boosting import early_stopping, stop_after
from tasks.models.families import FAMILIES, ONNX_NATIVE
from tasks.models.wrappers import (
    CalibratedClassifier,
    EncodedLabelClassifier,
    NativeCategoryClassifier,
    NativeCategoryRegressor,
    inner_estimator,
)
from tasks.search.spaces import fixed_settings

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.features.roles import ColumnRoles
    from tasks.types import Array, Estimator, Params

__all__ = ["build_pipeline", "fit_model", "fit_pipeline", "forest_leaf_cap", "openmp_threads",
           "preprocessing_key", "thread_cap", "watched_rows"]


def openmp_threads(n_jobs: int) -> int:
    """The OpenMP team size for a fit given n_jobs threads.

    The command line and the workers let idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE):
    spinning threads fight for shared cores (a 2-thread HistGradientBoosting fit on letter did not
    finish in 60 s beside two busy processes, 9-12 s passive). But waking a sleeping team costs
    more than a second thread gains in the boosting libraries' many small parallel loops: on 2
    quiet cores, letter took LightGBM 10.6 s with 2 passive threads and 3.1 s with 1,
    HistGradientBoosting 25.0 vs 3.6 s, XGBoost 1.4 vs 1.0 s. So under that policy they get one.
    """
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
        return 1
    return n_jobs


def build_pipeline(
    key: str,
    params: Params,
    *,
    task: str,
    roles: ColumnRoles,
    seed: int,
    n_jobs: int,
    featurize: bool = True,
    n_classes: int = 0,
    n_rows: int | None = None,
    onnx: bool = False,
) -> Pipeline:
    """An unfitted pipeline of preprocessing + the family's estimator with these parameters.
    A forest's size is bounded from `n_classes` (a classifier's classes: what each tree node
    holds) and `n_rows` (the rows it will be fitted on; None: not known). onnx: what converts
    to ONNX (tasks.onnx): categories one-hot but for ONNX_NATIVE, no engineered features."""
    family = FAMILIES[key]
    cls = family.estimator_class(task)
    settings: dict[str, object] = {**fixed_settings(key), **params}
    # Not the library's: the model is wrapped in tasks.features.engineered instead.
    engineered = bool(settings.pop("engineered_features", False)) and not onnx
    # CatBoost's get_params lists only what was set: its constructor's signature lists the rest.
    accepted = set(cls().get_params()) | set(inspect.signature(cls).parameters)
    if task != "classification" or "class_weight" not in accepted:
        # Searched for the classifiers of a family whose YAML also serves its regressor; never
        # passed to a regressor (LGBMRegressor would weight each distinct target value).
        settings.pop("class_weight", None)
    if family.openmp:
        n_jobs = openmp_threads(n_jobs)
    for knob, value in (("random_state", seed), (family.threads_knob, n_jobs)):
        if knob in accepted and (knob != family.threads_knob or family.threads):
            settings.setdefault(knob, value)
    if family.forest_mb is not None and "max_leaf_nodes" in accepted:
        trees, leaf = settings.get("n_estimators") or 100, settings.get("min_samples_leaf") or 1
        assert isinstance(trees, int) and isinstance(leaf, int | float)
        cap = forest_leaf_cap(family.forest_mb, trees, n_classes if task == "classification" else 1)
        if n_rows is not None and n_rows >= MAX_LEAVES_ROWS:
            cap = min(MAX_LEAVES, cap)
        # Only where it can bind: a cap changes the growth order, hence the trees, even unreached.
        if n_rows is None or n_rows / (leaf if leaf >= 1 else leaf * n_rows) > cap:
            settings.setdefault("max_leaf_nodes", cap)
    model = cls(**settings)
    native = _native(key, featurize, onnx)
    many_levels = family.categorical == "native"
    if native and "n_categorical" in accepted:
        # It reads the leading category codes itself (the MLP embeds them): told how many.
        model.set_params(n_categorical=native_columns(roles, many_levels))
    elif native:
        wrapper = NativeCategoryClassifier if task == "classification" else NativeCategoryRegressor
        model = wrapper(model, native_columns(roles, many_levels))
    if engineered:
        adds = (EngineeredFeaturesClassifier if task == "classification"
                else EngineeredFeaturesRegressor)
        model = adds(model, native_columns(roles, many_levels) if native else 0, random_state=seed)
    if task == "classification" and family.calibrate:
        model = CalibratedClassifier(model, random_state=seed)
    if task == "classification" and family.encode_labels:
        model = EncodedLabelClassifier(model)
    if task == "regression" and family.scale_target:
        model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    preprocess = build_preprocessor(
        roles, scaling=family.scaling, task=task, featurize=featurize,
        onehot_discrete=family.onehot_discrete, native_categorical=native,
        native_many_levels=many_levels,
    )
    return Pipeline([("features", preprocess), ("model", model)])


# A tree node in scikit-learn: its 64-byte record and one float64 per class (1 in regression).
NODE_BYTES = 64
MIN_LEAVES = 1000
# Leaves per tree at most on a large table, whatever the memory allows: fully grown trees'
# one-row leaves make poor probabilities and noisy averages. Learned on the meta tables
# (benchmarks/forest_leaves.py): 2,000 leaves scored better than 8,000 on 13 of 14 forests on
# tables of 20,000 rows or more (fits of 16,000 rows or more), at a quarter to a half of the size;
# below that, better than no cap on only 10 of 18, so smaller tables keep their trees.
MAX_LEAVES = 2000
MAX_LEAVES_ROWS = 16_000


def forest_leaf_cap(forest_mb: float, n_trees: int, n_values: int) -> int:
    """Leaves per tree so that n_trees trees (2 nodes a leaf) fit in forest_mb."""
    per_node = NODE_BYTES + 8 * max(1, n_values)
    return max(MIN_LEAVES, int(forest_mb * 2**20 / (n_trees * 2 * per_node)))


def fit_pipeline(
    pipeline: Pipeline, data: SearchData, rows: Array, n_jobs: int,
    stop_on: Array | None = None, watch: str | None = None,
) -> Pipeline:
    """Fit on `rows`. With `stop_on` (the fold's validation rows), a boosting model stops adding
    rounds when its `watch` ("auc", or "loss": its own) on them stops improving; other models
    ignore it."""
    X, y = data.X.iloc[rows], data.y[rows]
    weights = None if data.weights is None else data.weights[rows]
    with thread_cap(n_jobs):
        if stop_on is None or len(pipeline) < 2:
            routed = {} if weights is None else {"model__sample_weight": weights}
            return pipeline.fit(X, y, **routed)
        # The steps one by one, as Pipeline.fit does, so the watched rows can be featurized by
        # the fitted features step.
        features, model = pipeline[:-1], pipeline[-1]
        Xt = features.fit_transform(X, y)
        watched = stop_on[watched_rows(data, y, stop_on)]
        fit_model(model, Xt, y, weights, (features.transform(data.X.iloc[watched]),
                                          data.y[watched]), watch)
        return pipeline


def watched_rows(data: SearchData, y_fit: Array, rows: Array) -> Array:
    """Which of the validation `rows` early stopping may watch: not those of a class the fit
    rows lack (a boolean mask)."""
    if data.classes is None:
        return np.ones(len(rows), dtype=bool)
    # Against the classes, not the rows: isin on two large object arrays of labels is
    # quadratic (minutes on 350,000 string labels).
    return np.isin(data.y[rows], pd.unique(y_fit))


def fit_model(
    model: Estimator, Xt: Array, y: Array, weights: Array | None,
    watched: tuple[Array, Array] | None = None, watch: str | None = None,
    seconds: float | None = None,
) -> Estimator:
    """Fit the model step on featurized rows; with `watched` (featurized rows, their targets)
    a boosting model stops early on them, watching `watch` ("auc", or "loss": its own), and
    after `seconds` at the latest; a model with a clock of its own (the MLP) stops on it then,
    early stopping or not."""
    if seconds is not None and "time_limit" in inner_estimator(model).get_params():
        inner_estimator(model).set_params(time_limit=seconds)
    extra = None if watched is None else early_stopping(model, *watched,
                                                        None if watch == "loss" else watch)
    if extra is not None and seconds is not None:
        stop_after(model, seconds, extra)
    fit_weights = {} if weights is None else {"sample_weight": weights}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            return model.fit(Xt, y, **fit_weights, **(extra or {}))
    finally:
        if extra is not None and seconds is not None:
            _drop_callbacks(model)


def _drop_callbacks(model: Estimator) -> None:
    # XGBoost keeps its callbacks among its parameters: the clock is a class made at run time,
    # which a pickled model could not name. Every level of the wrappers holds a copy: the
    # template each wrapper cloned and the fitted estimator.
    pending, seen = [model], []
    while pending:
        level = pending.pop()
        seen.append(level)
        pending.extend(getattr(level, name) for name in ("estimator", "estimator_")
                       if hasattr(level, name))
    for inner in seen:
        if "callbacks" in inner.get_params() and inner.get_params()["callbacks"] is not None:
            inner.set_params(callbacks=None)


def preprocessing_key(key: str, featurize: bool, onnx: bool = False) -> tuple[object, ...]:
    """What a family's preprocessing depends on besides the data: pipelines of families with
    equal keys featurize the same rows alike."""
    family = FAMILIES[key]
    return (family.scaling, family.onehot_discrete, family.categorical, featurize,
            _native(key, featurize, onnx))


def _native(key: str, featurize: bool, onnx: bool) -> bool:
    """Whether the family reads category codes itself."""
    native = featurize and FAMILIES[key].categorical in ("native", "native_few_levels")
    return native and (not onnx or key in ONNX_NATIVE)


def thread_cap(n_jobs: int) -> threadpool_limits:
    # OpenMP-based models (histogram boosting) ignore n_jobs; cap their threads here instead.
    if n_jobs < 1:
        return threadpool_limits(limits=None)
    return threadpool_limits(limits={"openmp": openmp_threads(n_jobs), "blas": n_jobs})
