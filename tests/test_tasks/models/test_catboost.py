"""The CatBoost family: categories reach it as categories (integer codes it is told about, not
one-hot columns), its rounds are always decided by early stopping, and its pickled pipeline
predicts raw rows with unseen levels and missing values."""

from __future__ import annotations

import pickle

import numpy as np
from support import load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.features.preprocess import build_preprocessor, native_columns
from tasks.metrics import early_stopping_watch
from tasks.models.pipeline import build_pipeline
from tasks.models.wrappers import inner_estimator
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space


def test_categories_lead_the_model_input_as_codes(credit_profile):
    frame, profile = credit_profile
    roles = profile.roles
    k = native_columns(roles)
    assert k == len(roles.categorical + roles.boolean + roles.high_cardinality) > 0
    X = frame.drop(columns="class")
    pre = build_preprocessor(roles, scaling=None, task="classification", native_categorical=True)
    out = pre.fit_transform(X.iloc[:800])
    onehot = build_preprocessor(roles, scaling=None, task="classification").fit_transform(X)
    assert out.shape[1] < onehot.shape[1]  # one column per category, not one per level
    codes = out[:, :k]
    assert np.array_equal(codes, np.round(codes)) and codes.min() >= 0
    column = roles.categorical[0]
    unseen = X.iloc[800:801].copy()
    unseen[column] = "a level never seen"
    position = [name for name in pre.get_feature_names_out()].index(column)
    assert position < k
    assert pre.transform(unseen)[0, position] == -1


def test_catboost_is_told_which_columns_are_categories(credit_profile):
    frame, profile = credit_profile
    pipeline = build_pipeline("catboost", {**load_space("catboost").defaults[0],
                                           "n_estimators": 30},
                              task="classification", roles=profile.roles, seed=0, n_jobs=1)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    pipeline.fit(X.iloc[:800], y[:800])
    model = inner_estimator(pipeline[-1], fitted=True)
    assert model.get_cat_feature_indices() == list(range(native_columns(profile.roles)))
    # Raw rows, unseen levels and missing values included, through the pickled pipeline.
    rows = X.iloc[800:].copy()
    rows.iloc[0, rows.columns.get_loc(profile.roles.categorical[0])] = "never seen"
    rows.iloc[1, rows.columns.get_loc(profile.roles.numeric[0])] = np.nan
    restored = pickle.loads(pickle.dumps(pipeline))
    proba = restored.predict_proba(rows)
    assert proba.shape == (len(rows), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(restored.predict(rows)) <= set(y)
    assert np.allclose(proba, pipeline.predict_proba(rows))


def test_catboost_stops_early_even_when_nothing_is_watched():
    # Multiclass AUC: the boosters' AUC is binary, so nothing is watched (early_stopping None);
    # LightGBM then runs its searched rounds, but CatBoost's are only a ceiling.
    frame = load("wine_quality")
    config = parse_config(training_data="wine_quality", target="quality",
                          primary_metric="AUC_weighted", n_cross_validations=2)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    assert early_stopping_watch(profile.metric, len(data.classes)) is None
    settings = TrialSettings(profile.roles, seed=0, n_jobs=1, early_stopping=None,
                             metric=profile.metric.name)
    candidate = Candidate(0, "catboost", {**load_space("catboost").defaults[0],
                                          "learning_rate": 0.3})
    result = evaluate_candidate(candidate, data, settings)
    assert result.ok, result.error
    ceiling = load_space("catboost").fixed["n_estimators"]
    assert 1 <= result.refit_params["n_estimators"] < ceiling
