"""LightGBM, XGBoost and HistGradientBoosting take categories of few levels natively: the
category codes that lead the model input are declared as categories to each library, a column
of many levels stays target-encoded, and the pickled pipelines predict raw rows with unseen
levels and missing values."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from support import load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.features.preprocess import native_columns
from tasks.models.pipeline import build_pipeline
from tasks.models.wrappers import inner_estimator
from tasks.search.spaces import load_space


@pytest.fixture(scope="module")
def credit():
    frame = load("credit_g")
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    return frame, inspect_data(config, frame).roles


def _fitted(key: str, credit):
    frame, roles = credit
    params = dict(load_space(key).defaults[0])
    pipeline = build_pipeline(key, params, task="classification", roles=roles, seed=0, n_jobs=1)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    return pipeline.fit(X.iloc[:800], y[:800]), X, y


def _declared(key: str, model) -> list[int]:
    """The columns the fitted library model treats as categories, read from the model."""
    if key == "lightgbm":  # a categorical feature lists its levels, a numeric one none
        infos = model.booster_.dump_model()["feature_infos"].values()
        return [i for i, info in enumerate(infos) if info.get("values")]
    if key == "xgboost":
        return [i for i, t in enumerate(model.get_booster().feature_types) if t == "c"]
    return [int(i) for i in np.flatnonzero(model.is_categorical_)]


@pytest.mark.parametrize("key", ["lightgbm", "xgboost", "gradient_boosting"])
def test_boosters_are_told_which_columns_are_categories(key, credit):
    pipeline, X, y = _fitted(key, credit)
    _, roles = credit
    model = inner_estimator(pipeline[-1], fitted=True)
    k = native_columns(roles, many_levels=False)
    assert k > 0
    assert _declared(key, model) == list(range(k))
    # Raw rows with an unseen level and a missing value, through the pickled pipeline.
    rows = X.iloc[800:].copy()
    rows.iloc[0, rows.columns.get_loc(roles.categorical[0])] = "never seen"
    rows.iloc[1, rows.columns.get_loc(roles.numeric[0])] = np.nan
    restored = pickle.loads(pickle.dumps(pipeline))
    proba = restored.predict_proba(rows)
    assert proba.shape == (len(rows), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.allclose(proba, pipeline.predict_proba(rows))
    assert set(restored.predict(rows)) <= set(y)


def test_an_unseen_level_reads_as_missing_not_as_a_level(credit):
    # The codes' -1 would be a level of its own to XGBoost: it must reach it as NaN.
    pipeline, X, _ = _fitted("xgboost", credit)
    _, roles = credit
    column = roles.categorical[0]
    rows = X.iloc[800:810].copy()
    rows[column] = "never seen"
    features, model = pipeline[0], pipeline[-1]
    position = list(features.get_feature_names_out()).index(column)
    Xt = features.transform(rows)
    assert (Xt[:, position] == -1).all()
    missing = Xt.copy()
    missing[:, position] = np.nan
    assert np.allclose(model.predict_proba(Xt), model.predict_proba(missing))
    seen = Xt.copy()
    seen[:, position] = 0
    assert not np.allclose(model.predict_proba(Xt), model.predict_proba(seen))


@pytest.mark.parametrize("key", ["lightgbm", "xgboost", "gradient_boosting"])
def test_a_column_of_many_levels_stays_target_encoded(key):
    frame = load("adult").iloc[:3000]
    config = parse_config(training_data="adult", target="class", n_cross_validations=3)
    roles = inspect_data(config, frame).roles
    assert roles.high_cardinality == ("native-country",)
    pipeline = build_pipeline(key, dict(load_space(key).defaults[0]), task="classification",
                              roles=roles, seed=0, n_jobs=1)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    pipeline.fit(X, y)
    names = list(pipeline[0].get_feature_names_out())
    k = native_columns(roles, many_levels=False)
    assert k == len(roles.categorical) and names.index("native-country") >= k
    assert _declared(key, inner_estimator(pipeline[-1], fitted=True)) == list(range(k))
    # Its values are target means (fractions), not codes.
    column = pipeline[0].transform(X)[:, names.index("native-country")]
    assert not np.array_equal(column, np.round(column))
