"""tasks.features.engineered: golden features, crosses and out-of-fold target encodings appended
to a booster's input, decided on its fit rows, through early stopping, pickling and a trial."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import log_loss
from support import load
from threadpoolctl import threadpool_limits

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.features.engineered import EngineeredFeaturesClassifier
from tasks.metrics import early_stopping_watch
from tasks.models.boosting import STOP_SHARE, early_stopping
from tasks.models.pipeline import build_pipeline
from tasks.models.wrappers import inner_estimator
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space

N_FIT = 700


def _pipeline(key: str, roles, **params):
    point = {**load_space(key).defaults[0], "engineered_features": True, **params}
    return build_pipeline(key, point, task="classification", roles=roles, seed=0, n_jobs=1)


@pytest.fixture(scope="module")
def featurized(credit_profile):
    """LightGBM's featurized credit_g rows (codes first), fit rows and new rows, and its
    engineered-features step, unfitted."""
    frame, profile = credit_profile
    pipeline = _pipeline("lightgbm", profile.roles)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    features = pipeline[0].fit(X.iloc[:N_FIT], y[:N_FIT])
    return features.transform(X.iloc[:N_FIT]), y[:N_FIT], features.transform(X.iloc[N_FIT:]), \
        y[N_FIT:], pipeline[-1]


def _fit(model, X, y, **fit_params):
    with threadpool_limits(limits=1):
        return clone(model).fit(X, y, **fit_params)


def test_columns_are_appended_and_the_codes_stay_categories_in_front(featurized):
    X, y, X_new, _, model = featurized
    model = _fit(model, X, y)
    k, width = model.n_categorical, X.shape[1]
    assert k > 0 and model.crossed_
    out = model.transform(X_new)
    # binary target: one encoding per code column and per cross
    assert out.shape == (len(X_new), width + len(model.golden_) + k + len(model.crossed_))
    assert np.array_equal(out[:, :width], X_new)
    # The booster is fitted on every column and still told the leading codes are categories.
    booster = inner_estimator(model, fitted=True)
    assert booster.n_features_in_ == out.shape[1]
    infos = list(booster.booster_.dump_model()["feature_infos"].values())
    assert [i for i, info in enumerate(infos) if info.get("values")] == list(range(k))


def test_golden_features_combine_two_strong_numeric_columns():
    frame = load("abalone")
    config = parse_config(training_data="abalone", target="Rings", task="regression",
                          n_cross_validations=3)
    roles = inspect_data(config, frame).roles
    point = {**load_space("lightgbm").defaults[0], "engineered_features": True}
    pipeline = build_pipeline("lightgbm", point, task="regression", roles=roles, seed=0, n_jobs=1)
    X, y = frame.drop(columns="Rings"), frame["Rings"].to_numpy()
    features = pipeline[0].fit(X.iloc[:N_FIT], y[:N_FIT])
    model = _fit(pipeline[-1], features.transform(X.iloc[:N_FIT]), y[:N_FIT])
    X_new = features.transform(X.iloc[N_FIT:])
    out, k, width = model.transform(X_new), model.n_categorical, X_new.shape[1]
    assert model.golden_ and k == 1  # Sex: a code, with nothing to cross
    assert out.shape[1] == width + len(model.golden_) + k
    expected = {"ratio": lambda a, b: np.where(b != 0, a / np.where(b != 0, b, 1), np.nan),
                "difference": np.subtract, "product": np.multiply}
    for i, (a, b, op) in enumerate(model.golden_):
        assert a >= k and b >= k, "golden features combine numeric columns only"
        want = expected[op](X_new[:, a].astype(float), X_new[:, b].astype(float))
        np.testing.assert_allclose(out[:, width + i], want, rtol=1e-6, equal_nan=True)
    assert inner_estimator(model, fitted=True).n_features_in_ == out.shape[1]


def test_what_is_built_is_decided_on_the_fit_rows_alone(featurized):
    X, y, X_new, y_new, model = featurized
    plain = _fit(model, X, y)
    # Early stopping's rows, their targets shuffled: engineered like new rows, never chosen on.
    shuffled = np.random.default_rng(0).permutation(y_new)
    watched = _fit(model, X, y, eval_set=[(X_new, shuffled)])
    assert watched.golden_ == plain.golden_ and watched.crossed_ == plain.crossed_
    assert np.array_equal(watched.transform(X_new), plain.transform(X_new))
    # Transforming rows changes nothing: row by row gives what the whole batch gives.
    batch = plain.transform(X_new)
    golden, crossed = list(plain.golden_), list(plain.crossed_)
    rows = np.vstack([plain.transform(X_new[i:i + 1]) for i in range(20)])
    assert np.array_equal(rows, batch[:20], equal_nan=True)
    assert plain.golden_ == golden and plain.crossed_ == crossed


def test_early_stopping_watches_its_rows_engineered_as_new_rows(featurized):
    X, y, X_new, y_new, model = featurized
    model = clone(model)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
        model.fit(X, y, **early_stopping(model, X_new, y_new))
    booster = inner_estimator(model, fitted=True)
    assert 1 <= booster.best_iteration_ <= booster.n_estimators
    # The loss LightGBM recorded on the watched rows is the loss on those rows engineered.
    recorded = booster.best_score_["valid_0"]["binary_logloss"]
    proba = model.predict_proba(X_new)
    assert recorded == pytest.approx(log_loss(y_new, proba, labels=model.classes_), rel=1e-5)


def test_fit_rows_are_target_encoded_out_of_fold_and_new_rows_on_all_of_them(featurized):
    from sklearn.neighbors import KNeighborsClassifier

    X, y, X_new, _, model = featurized
    k = model.n_categorical
    codes, new_codes = X[:, :k], X_new[:, :k]
    # KNN keeps the matrix it was fitted on: what the inner model saw of the fit rows.
    wrapper = EngineeredFeaturesClassifier(KNeighborsClassifier(), n_categorical=k,
                                           random_state=0).fit(codes, y)
    seen = wrapper.estimator_._fit_X  # noqa: SLF001 - where KNN keeps it
    again = wrapper.transform(codes)
    assert seen.shape == again.shape and np.array_equal(seen[:, :k], codes)
    assert not wrapper.golden_ and seen.shape[1] == 2 * k + len(wrapper.crossed_)
    assert not np.allclose(seen[:, k:], again[:, k:])
    # Column k: the first code column's encoding. Cross-fitted, a level's fit rows get its mean
    # from the other folds, so several values; new rows get the one learnt on all fit rows.
    encoded_fit, encoded_new = seen[:, k], wrapper.transform(new_codes)[:, k]
    levels, counts = np.unique(codes[:, 0], return_counts=True)
    assert (counts >= 20).sum() >= 2
    for level in levels[counts >= 20]:
        assert len(np.unique(encoded_fit[codes[:, 0] == level])) > 1
        assert len(np.unique(encoded_new[new_codes[:, 0] == level])) <= 1
        assert len(np.unique(again[codes[:, 0] == level, k])) == 1


@pytest.mark.parametrize("key", ["lightgbm", "catboost"])
def test_a_pickled_pipeline_predicts_the_same(credit_profile, key):
    frame, profile = credit_profile
    few = {"n_estimators": 60}  # a ceiling that only early stopping would lower
    pipeline = _pipeline(key, profile.roles, **few)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    with threadpool_limits(limits=1):
        pipeline.fit(X.iloc[:N_FIT], y[:N_FIT])
    assert inner_estimator(pipeline[-1], fitted=True).n_features_in_ > \
        pipeline[0].transform(X.iloc[:5]).shape[1]
    rows = X.iloc[N_FIT:].copy()
    rows.iloc[0, rows.columns.get_loc(profile.roles.categorical[0])] = "never seen"
    restored = pickle.loads(pickle.dumps(pipeline))
    proba = restored.predict_proba(rows)
    assert proba.shape == (len(rows), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba, pipeline.predict_proba(rows))
    assert list(restored.classes_) == sorted(set(y))


def test_a_lightgbm_trial_stops_early_through_the_wrapper(credit_profile):
    frame, _ = credit_profile
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(profile.roles, seed=0, n_jobs=1, stop_share=STOP_SHARE,
                             early_stopping=early_stopping_watch(profile.metric, 2))
    assert settings.early_stopping == "auc"
    point = {**load_space("lightgbm").defaults[0], "engineered_features": True,
             "n_estimators": 1000, "learning_rate": 0.3}
    result = evaluate_candidate(Candidate(0, "lightgbm", point), data, settings)
    assert result.ok, result.error
    assert 1 <= result.refit_params["n_estimators"] < 1000
