"""Bad input is refused before training with one sentence: the thing, the value, the fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import load

from tasks.config import parse_config
from tasks.errors import ConfigError, DataError
from tasks.data.inspect import infer_task, inspect_data


def config(**knobs):
    return parse_config(training_data="data.parquet", **{"target": "class", **knobs})


@pytest.fixture(scope="module")
def credit():
    return load("credit_g")


@pytest.mark.parametrize(
    ("name", "target", "task"),
    [
        ("credit_g", "class", "classification"),
        ("wine_quality", "quality", "classification"),
        ("concrete", "compressive_strength", "regression"),
        ("abalone", "Rings", "regression"),
        ("titanic", "Survived", "classification"),
    ],
)
def test_task_is_inferred_from_the_target(name, target, task):
    assert infer_task(load(name)[target]) == task


def test_a_good_config_yields_a_profile(credit):
    profile = inspect_data(config(), credit)
    assert profile.task == "classification" and profile.task_inferred
    assert profile.metric.name == "AUC_weighted"
    assert set(profile.class_counts) == set(credit["class"].astype(str).unique())
    assert "class" not in profile.roles.used


def test_missing_target_lists_the_columns(credit):
    with pytest.raises(DataError, match=r"target column 'price' is not in 'data.parquet'; columns are: checking_status"):
        inspect_data(config(target="price"), credit)


def test_empty_table(credit):
    with pytest.raises(DataError, match="has no rows"):
        inspect_data(config(), credit.iloc[:0])


def test_single_class(credit):
    with pytest.raises(DataError, match=r"single class \('good'\); classification needs at least two"):
        inspect_data(config(), credit[credit["class"] == "good"])


def test_target_with_missing_values(credit):
    broken = credit.copy()
    broken.loc[[3, 7], "class"] = None
    with pytest.raises(DataError, match="has 2 missing value\\(s\\).*drop or fill"):
        inspect_data(config(), broken)


def test_too_few_rows_of_a_class_for_the_folds_asked_for(credit):
    small = pd.concat([credit[credit["class"] == "good"].head(40), credit[credit["class"] == "bad"].head(3)])
    with pytest.raises(DataError, match=r"n_cross_validations=5 .* class 'bad' has 3; use fewer folds"):
        inspect_data(config(n_cross_validations=5), small)


def test_default_folds_bend_for_a_rare_class():
    """hypothyroid has a class of 2 rows: the default 5-fold CV still runs, every row once."""
    from tasks.data.split import SplitPlan, split_data

    frame = load("hypothyroid")
    cfg = config(target="Class")
    data, _ = split_data(SplitPlan.of(cfg), inspect_data(cfg, frame), frame)
    assert len(data.folds) == 5
    assert sorted(data.valid_rows.tolist()) == list(range(len(frame)))


def test_too_few_rows_for_cv():
    tiny = load("concrete").head(4)
    with pytest.raises(DataError, match=r"n_cross_validations=10 needs at least 10 rows, the data has 4"):
        inspect_data(config(target="compressive_strength", n_cross_validations=10), tiny)


def test_unknown_metric_lists_the_valid_ones(credit):
    with pytest.raises(ConfigError, match=r"primary_metric 'AUC' is an unknown metric; valid classification metrics are: .*AUC_weighted"):
        inspect_data(config(primary_metric="AUC"), credit)


def test_metric_of_the_other_task(credit):
    with pytest.raises(ConfigError, match=r"'r2_score' is a metric for regression, not classification"):
        inspect_data(config(primary_metric="r2_score"), credit)


def test_unknown_model_lists_the_valid_ones(credit):
    with pytest.raises(ConfigError, match=r"allowed_models names 'DeepForest'.*valid names are: LightGBM"):
        inspect_data(config(allowed_models=["DeepForest"]), credit)


def test_text_target_cannot_be_regressed(credit):
    with pytest.raises(DataError, match="is not numeric .* use task=classification"):
        inspect_data(config(task="regression"), credit)


def test_validation_data_must_have_the_training_columns(credit):
    with pytest.raises(DataError, match=r"validation_data 'v.parquet' lacks the training columns duration"):
        inspect_data(config(validation_data="v.parquet"), credit, credit.drop(columns=["duration"]))


def test_weights_must_be_non_negative_numbers(credit):
    weighted = credit.assign(w=np.where(credit.index % 2, 1.0, -1.0))
    with pytest.raises(DataError, match="weight_column 'w' must hold non-negative numbers"):
        inspect_data(config(weight_column="w"), weighted)
