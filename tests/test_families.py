"""tasks.families: Azure model names resolved to registry keys, with messages a user can act on."""

from __future__ import annotations

import pytest
from conftest import load

from tasks.errors import ConfigError
from tasks.estimators import EncodedLabelClassifier
from tasks.families import FAMILIES, build_pipeline, resolve_families
from tasks.features import detect_roles


def _supporting(task: str) -> list[str]:
    return [k for k, f in FAMILIES.items() if task in f.estimators]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_no_knobs_gives_every_family_of_the_task_in_registry_order(task):
    chosen = resolve_families(task)
    assert chosen == _supporting(task)
    assert all(task in FAMILIES[k].estimators for k in chosen)


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("randomforest", "random_forest"),
        ("RandomForest", "random_forest"),
        ("RANDOM_FOREST", "random_forest"),
        ("random-forest", "random_forest"),
        ("XGBoostClassifier", "xgboost"),
        ("xgboostregressor", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("LightGBM", "lightgbm"),
        ("ExtremeRandomTrees", "extra_trees"),
        ("GradientBoosting", "gradient_boosting"),
        ("knn", "knn"),
    ],
)
def test_allowed_models_accepts_azure_spellings(spelling, key):
    assert resolve_families("classification", allowed=[spelling]) == [key]


def test_allowed_models_keeps_registry_order_and_dedups():
    chosen = resolve_families(
        "regression", allowed=["KNN", "RandomForest", "lightgbm", "random_forest", "LIGHTGBM"]
    )
    assert chosen == [k for k in FAMILIES if k in {"knn", "random_forest", "lightgbm"}]


def test_blocked_models_removes():
    chosen = resolve_families("classification", blocked=["XGBoostClassifier", "knn"])
    assert "xgboost" not in chosen and "knn" not in chosen
    assert set(chosen) == set(_supporting("classification")) - {"xgboost", "knn"}


def test_blocked_wins_over_allowed():
    chosen = resolve_families(
        "regression", allowed=["LightGBM", "ElasticNet"], blocked=["lightgbm"]
    )
    assert chosen == ["elastic_net"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ConfigError, match=r"allowed_models names 'DeepForest', which is not a classification model"
    ) as info:
        resolve_families("classification", allowed=["RandomForest", "DeepForest"])
    message = str(info.value)
    for key in _supporting("classification"):
        assert FAMILIES[key].name in message
    assert "ElasticNet" not in message  # a regression-only family is not offered


def test_unknown_blocked_name_names_the_knob():
    with pytest.raises(ConfigError, match=r"blocked_models names 'SVM'.*valid names are: LightGBM"):
        resolve_families("regression", blocked=["SVM"])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_blocking_everything_is_an_error(task):
    every = [FAMILIES[k].name for k in _supporting(task)]
    pattern = r"leave no model to try; allow at least one of: .*RandomForest"
    with pytest.raises(ConfigError, match=pattern):
        resolve_families(task, blocked=every)


def test_allowing_only_blocked_is_an_error():
    with pytest.raises(ConfigError, match=r"leave no model to try"):
        resolve_families("classification", allowed=["knn"], blocked=["KNN"])


def test_classification_only_family_rejected_for_regression():
    with pytest.raises(
        ConfigError,
        match=r"allowed_models names 'LogisticRegression', which is not a regression model; "
        r"valid names are: .*ElasticNet",
    ) as info:
        resolve_families("regression", allowed=["LogisticRegression"])
    assert "LogisticRegression," not in str(info.value).split("valid names are:")[1]


def test_regression_only_family_rejected_for_classification():
    with pytest.raises(ConfigError, match=r"'elastic_net', which is not a classification model"):
        resolve_families("classification", blocked=["elastic_net"])


def test_every_family_names_a_real_estimator():
    for family in FAMILIES.values():
        for task in family.estimators:
            cls = family.estimator_class(task)
            assert isinstance(cls, type)
            kind = cls().__sklearn_tags__().estimator_type
            assert kind == ("classifier" if task == "classification" else "regressor"), family.key


@pytest.fixture(scope="module")
def roles():
    return detect_roles(load("credit_g").drop(columns="class").head(200))


def test_build_pipeline_wraps_label_encoding_families(roles):
    for key, family in FAMILIES.items():
        if "classification" not in family.estimators:
            continue
        model = build_pipeline(key, {}, task="classification", roles=roles, seed=0, n_jobs=1)[-1]
        assert isinstance(model, EncodedLabelClassifier) == family.encode_labels, key


def test_build_pipeline_passes_seed_and_threads_only_where_accepted(roles):
    for key, family in FAMILIES.items():
        for task in family.estimators:
            model = build_pipeline(key, {}, task=task, roles=roles, seed=11, n_jobs=3)[-1]
            if isinstance(model, EncodedLabelClassifier):
                model = model.estimator
            params = model.get_params()
            if "random_state" in params:
                assert params["random_state"] == 11, key
            if "n_jobs" in params:
                assert params["n_jobs"] == (3 if family.threads else None), key


def test_build_pipeline_caller_params_override_fixed(roles):
    model = build_pipeline(
        "random_forest", {"n_estimators": 7}, task="regression", roles=roles, seed=0, n_jobs=1
    )[-1]
    assert model.get_params()["n_estimators"] == 7
