"""tasks.search.encoded: a worker featurizes each fold once per kind of preprocessing, and a
trial on kept features scores exactly as one that featurized its own."""

from __future__ import annotations

import numpy as np
import pytest
from support import load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.models.pipeline import preprocessing_key
from tasks.search import encoded
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space


@pytest.fixture(scope="module")
def credit():
    frame = load("credit_g")  # 13 text columns: featurizing is most of a small trial
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(profile.roles, seed=0, n_jobs=1, early_stopping="loss",
                             metric="AUC_weighted")
    return data, settings


def _candidate(number: int, family: str) -> Candidate:
    return Candidate(number, family, dict(load_space(family).defaults[0]))


def _cold(monkeypatch) -> None:
    monkeypatch.setattr(encoded, "_CACHE", encoded._Cache())


def test_a_fold_is_featurized_once_for_the_families_that_share_its_preprocessing(
        credit, monkeypatch):
    data, settings = credit
    _cold(monkeypatch)
    assert preprocessing_key("lightgbm", True) == preprocessing_key("random_forest", True)
    assert preprocessing_key("lightgbm", True) != preprocessing_key("logistic_regression", True)
    for number, family in enumerate(["lightgbm", "random_forest", "logistic_regression"]):
        assert evaluate_candidate(_candidate(number, family), data, settings).ok
    # Trees share one featurization per fold, the scaled linear model has its own.
    assert len(encoded._CACHE.entries) == 2 * len(data.folds)


@pytest.mark.parametrize("family", ["logistic_regression", "lightgbm", "knn"])
def test_kept_features_score_as_fresh_ones(credit, monkeypatch, family):
    # Warm with every kind of preprocessing first: a key that mixed two kinds would hand this
    # family another's features.
    data, settings = credit
    _cold(monkeypatch)
    fresh = evaluate_candidate(_candidate(0, family), data, settings)
    for number, other in enumerate(["random_forest", "logistic_regression", "knn", "xgboost"]):
        evaluate_candidate(_candidate(number + 1, other), data, settings)
    kept = evaluate_candidate(_candidate(9, family), data, settings)
    assert fresh.ok and kept.ok
    assert kept.metrics == fresh.metrics
    np.testing.assert_array_equal(kept.predictions, fresh.predictions)
    # The featurizing the trial was spared still counts in its time (the refit will pay it),
    # and is said to be spared.
    assert fresh.reused_seconds == 0 and kept.reused_seconds > 0
    assert kept.fit_seconds > kept.reused_seconds


def test_the_cache_keeps_to_its_size_dropping_the_oldest(credit, monkeypatch):
    data, settings = credit
    _cold(monkeypatch)
    evaluate_candidate(_candidate(0, "lightgbm"), data, settings)
    one_kind = sum(e.nbytes for e in encoded._CACHE.entries.values()) / 2**20
    monkeypatch.setattr(encoded, "CACHE_MB", one_kind)
    evaluate_candidate(_candidate(1, "logistic_regression"), data, settings)
    keys = {index[1:] for index in encoded._CACHE.entries}
    assert keys == {preprocessing_key("logistic_regression", True)}, keys
    # Never below one entry, however small the allowance.
    monkeypatch.setattr(encoded, "CACHE_MB", 0.0)
    assert evaluate_candidate(_candidate(2, "lightgbm"), data, settings).ok
    assert len(encoded._CACHE.entries) == 1


def test_a_kept_fold_model_predicts_raw_rows(credit, monkeypatch):
    # The pipeline a trial returns holds the kept features step: it still takes raw rows.
    data, settings = credit
    _cold(monkeypatch)
    evaluate_candidate(_candidate(0, "lightgbm"), data, settings)
    entry = next(iter(encoded._CACHE.entries.values()))
    fit_rows, valid_rows = data.folds[0]
    np.testing.assert_array_equal(entry.features.transform(data.X.iloc[valid_rows]), entry.valid)
    assert entry.fit.dtype == np.float32 and len(entry.fit) == len(fit_rows)
