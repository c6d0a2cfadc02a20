"""Balanced class weights as a searched option of the tree and boosting families: they reach the
classifiers, change what they predict on imbalanced data, and never reach a regressor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import load
from threadpoolctl import threadpool_limits

from tasks.models.families import FAMILIES
from tasks.models.pipeline import build_pipeline
from tasks.models.wrappers import inner_estimator
from tasks.features.roles import detect_roles
from tasks.search.spaces import load_space

WEIGHTED = [k for k in FAMILIES if "class_weight" in load_space(k).params]
UNWRAPPED = [k for k in WEIGHTED if not FAMILIES[k].calibrate]  # the estimator is within reach


def _point(family: str, class_weight) -> dict:
    point = {**load_space(family).defaults[0], "class_weight": class_weight}
    if "n_estimators" in point or "n_estimators" in load_space(family).fixed:
        point["n_estimators"] = 40
    return point


def test_the_tree_and_boosting_families_search_class_weights():
    assert {"lightgbm", "gradient_boosting", "random_forest", "extra_trees"} <= set(WEIGHTED)
    for family in WEIGHTED:
        assert load_space(family).params["class_weight"].choices == (None, "balanced")
        assert all(d["class_weight"] is None for d in load_space(family).defaults)  # off first


@pytest.mark.parametrize("family", UNWRAPPED)
def test_balanced_weights_raise_the_minority_class_probability(family):
    frame = load("kc1")  # 15% defects: the guardrail alerts class imbalance here
    X, y = frame.drop(columns="defects"), frame["defects"].to_numpy()
    roles = detect_roles(X)
    mean_minority = {}
    for weight in (None, "balanced"):
        model = build_pipeline(family, _point(family, weight), task="classification", roles=roles,
                               seed=0, n_jobs=1)
        assert inner_estimator(model.named_steps["model"]).get_params()["class_weight"] == weight
        with threadpool_limits(1):
            model.fit(X.iloc[:1500], y[:1500])
        minority = list(model.classes_).index(pd.Series(y).value_counts().idxmin())
        # On rows it did not see: fully grown trees reproduce their own training labels anyway.
        mean_minority[weight] = model.predict_proba(X.iloc[1500:])[:, minority].mean()
    assert mean_minority["balanced"] > mean_minority[None] + 0.01  # same seed: equal if ignored


@pytest.mark.parametrize("family", [k for k in WEIGHTED if "regression" in FAMILIES[k].estimators])
def test_regressors_build_and_fit_without_class_weight(family):
    frame = load("concrete").head(300)
    X, y = frame.drop(columns="compressive_strength"), frame["compressive_strength"]
    model = build_pipeline(family, _point(family, "balanced"), task="regression",
                           roles=detect_roles(X), seed=0, n_jobs=1)
    assert inner_estimator(model.named_steps["model"]).get_params().get("class_weight") is None
    with threadpool_limits(1):
        assert np.isfinite(model.fit(X, y).predict(X.head(5))).all()
