"""Pipelines of a family's estimator behind the preprocessing, fitted with the trial's threads."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tasks.features.preprocess import build_preprocessor
from tasks.models.boosting import early_stopping
from tasks.models.families import FAMILIES
from tasks.models.wrappers import CalibratedClassifier, EncodedLabelClassifier
from tasks.search.spaces import fixed_settings

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.features.roles import ColumnRoles
    from tasks.types import Array, Params

__all__ = ["build_pipeline", "fit_pipeline", "forest_leaf_cap", "openmp_threads", "thread_cap"]


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
) -> Pipeline:
    """An unfitted pipeline of preprocessing + the family's estimator with these parameters.
    A forest's size is bounded from `n_classes` (a classifier's classes: what each tree node
    holds) and `n_rows` (the rows it will be fitted on; None: not known)."""
    family = FAMILIES[key]
    cls = family.estimator_class(task)
    settings: dict[str, object] = {**fixed_settings(key), **params}
    accepted = cls().get_params()
    if task != "classification" or "class_weight" not in accepted:
        # Searched for the classifiers of a family whose YAML also serves its regressor; never
        # passed to a regressor (LGBMRegressor would weight each distinct target value).
        settings.pop("class_weight", None)
    if family.openmp:
        n_jobs = openmp_threads(n_jobs)
    for knob, value in (("random_state", seed), ("n_jobs", n_jobs)):
        if knob in accepted and (knob != "n_jobs" or family.threads):
            settings.setdefault(knob, value)
    if family.forest_mb is not None and "max_leaf_nodes" in accepted:
        trees, leaf = settings.get("n_estimators") or 100, settings.get("min_samples_leaf") or 1
        assert isinstance(trees, int) and isinstance(leaf, int | float)
        cap = forest_leaf_cap(family.forest_mb, trees, n_classes if task == "classification" else 1)
        # Only where it can bind: a cap changes the growth order, hence the trees, even unreached.
        if n_rows is None or n_rows / (leaf if leaf >= 1 else leaf * n_rows) > cap:
            settings.setdefault("max_leaf_nodes", cap)
    model = cls(**settings)
    if task == "classification" and family.calibrate:
        model = CalibratedClassifier(model, random_state=seed)
    if task == "classification" and family.encode_labels:
        model = EncodedLabelClassifier(model)
    if task == "regression" and family.scale_target:
        model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
    preprocess = build_preprocessor(
        roles, scaling=family.scaling, task=task, featurize=featurize,
        onehot_discrete=family.onehot_discrete,
    )
    return Pipeline([("features", preprocess), ("model", model)])


# A tree node in scikit-learn: its 64-byte record and one float64 per class (1 in regression).
NODE_BYTES = 64
MIN_LEAVES = 1000


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
    weights = {} if data.weights is None else {"sample_weight": data.weights[rows]}
    with thread_cap(n_jobs):
        if stop_on is None or len(pipeline) < 2:
            return pipeline.fit(X, y, **{f"model__{k}": v for k, v in weights.items()})
        # The steps one by one, as Pipeline.fit does, so the watched rows can be featurized by
        # the fitted features step. Rows of a class the fit rows lack are not watched.
        features, model = pipeline[:-1], pipeline[-1]
        Xt = features.fit_transform(X, y)
        # Against the classes, not the rows: isin on two large object arrays of labels is
        # quadratic (minutes on 350,000 string labels).
        seen = pd.unique(y)
        watched = stop_on if data.classes is None else stop_on[np.isin(data.y[stop_on], seen)]
        extra = early_stopping(model, features.transform(data.X.iloc[watched]), data.y[watched],
                               None if watch == "loss" else watch)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            model.fit(Xt, y, **weights, **(extra or {}))
        return pipeline


def thread_cap(n_jobs: int) -> threadpool_limits:
    # OpenMP-based models (histogram boosting) ignore n_jobs; cap their threads here instead.
    if n_jobs < 1:
        return threadpool_limits(limits=None)
    return threadpool_limits(limits={"openmp": openmp_threads(n_jobs), "blas": n_jobs})
