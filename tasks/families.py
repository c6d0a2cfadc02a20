"""The registry of model families: Azure's name, the estimator per task, what it needs.

Adding a family = one YAML file under search_spaces/ + one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from tasks.errors import ConfigError
from tasks.estimators import EncodedLabelClassifier
from tasks.features import ColumnRoles, build_preprocessor
from tasks.spaces import load_space

__all__ = ["Family", "FAMILIES", "resolve_families", "build_pipeline"]


@dataclass(frozen=True)
class Family:
    key: str  # the search_spaces/<key>.yaml stem
    name: str  # Azure's spelling, shown to users
    estimators: dict[str, str]  # task -> "module:Class"
    scaling: str | None = None  # "standard" for linear, kernel and distance models; "minmax" for
                                # models that need non-negative inputs (multinomial naive Bayes)
    encode_labels: bool = False  # the estimator only accepts labels 0..K-1
    threads: bool = True  # takes n_jobs (LogisticRegression's n_jobs is deprecated and inert)
    aliases: tuple[str, ...] = ()

    def estimator_class(self, task: str) -> type:
        module, _, cls = self.estimators[task].partition(":")
        return getattr(importlib.import_module(module), cls)


# Order matters: it is the order of the default configurations tried first.
FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family("lightgbm", "LightGBM", {
            "classification": "lightgbm:LGBMClassifier", "regression": "lightgbm:LGBMRegressor"}),
        Family("gradient_boosting", "GradientBoosting", {
            "classification": "sklearn.ensemble:HistGradientBoostingClassifier",
            "regression": "sklearn.ensemble:HistGradientBoostingRegressor"}),
        Family("xgboost", "XGBoost", {
            "classification": "xgboost:XGBClassifier", "regression": "xgboost:XGBRegressor"},
            encode_labels=True, aliases=("XGBoostClassifier", "XGBoostRegressor")),
        Family("random_forest", "RandomForest", {
            "classification": "sklearn.ensemble:RandomForestClassifier",
            "regression": "sklearn.ensemble:RandomForestRegressor"}),
        Family("extra_trees", "ExtremeRandomTrees", {
            "classification": "sklearn.ensemble:ExtraTreesClassifier",
            "regression": "sklearn.ensemble:ExtraTreesRegressor"}),
        Family("logistic_regression", "LogisticRegression", {
            "classification": "sklearn.linear_model:LogisticRegression"}, scaling="standard", threads=False),
        Family("elastic_net", "ElasticNet", {
            "regression": "sklearn.linear_model:ElasticNet"}, scaling="standard"),
        Family("knn", "KNN", {
            "classification": "sklearn.neighbors:KNeighborsClassifier",
            "regression": "sklearn.neighbors:KNeighborsRegressor"}, scaling="standard"),
    )
}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_LOOKUP = {
    _normalise(alias): f.key
    for f in FAMILIES.values()
    for alias in (f.key, f.name, *f.aliases)
}


def resolve_families(
    task: str, allowed: Iterable[str] | None = None, blocked: Iterable[str] | None = None
) -> list[str]:
    """The family keys to search, in registry order; unknown names list the valid ones."""
    valid = [f.name for f in FAMILIES.values() if task in f.estimators]

    def keys(names: Iterable[str] | None, knob: str) -> set[str]:
        out = set()
        for name in names or ():
            key = _LOOKUP.get(_normalise(name))
            if key is None or task not in FAMILIES[key].estimators:
                raise ConfigError(
                    f"{knob} names '{name}', which is not a {task} model; "
                    f"valid names are: {', '.join(valid)}"
                )
            out.add(key)
        return out

    allow, block = keys(allowed, "allowed_models"), keys(blocked, "blocked_models")
    chosen = [
        k for k, f in FAMILIES.items()
        if task in f.estimators and (not allow or k in allow) and k not in block
    ]
    if not chosen:
        raise ConfigError(
            "allowed_models and blocked_models leave no model to try; "
            f"allow at least one of: {', '.join(valid)}"
        )
    return chosen


def build_pipeline(
    key: str,
    params: dict[str, Any],
    *,
    task: str,
    roles: ColumnRoles,
    seed: int,
    n_jobs: int,
    featurize: bool = True,
) -> Pipeline:
    """An unfitted pipeline of preprocessing + the family's estimator with these parameters."""
    family = FAMILIES[key]
    cls = family.estimator_class(task)
    settings = {**load_space(key).fixed, **params}
    accepted = cls().get_params()
    for knob, value in (("random_state", seed), ("n_jobs", n_jobs)):
        if knob in accepted and (knob != "n_jobs" or family.threads):
            settings.setdefault(knob, value)
    model = cls(**settings)
    if family.encode_labels and task == "classification":
        model = EncodedLabelClassifier(model)
    preprocess = build_preprocessor(roles, scaling=family.scaling, task=task, featurize=featurize)
    return Pipeline([("features", preprocess), ("model", model)])

