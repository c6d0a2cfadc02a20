"""The same data, seed and iterations give the same model, to the last bit, whether one or two
trials run at once and on the local or the Dask runner (results reach the sampler in the order
they were asked: tasks.search.loop)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from support import dataset_path, load

from flows.automl import train
from tasks.config import parse_config

pytestmark = pytest.mark.slow

KNOBS = {"iterations": 20, "allowed_models": ["LightGBM", "LogisticRegression"],
         "random_state": 11, "target": "donated_march_2007"}


def fit(workdir, **knobs):
    config = parse_config(training_data=str(dataset_path("blood_transfusion")),
                          workdir=str(workdir), **{**KNOBS, **knobs})
    assert config.deterministic  # on by default: iterations was given
    result = train(config)
    with open(result.pkl_uri, "rb") as handle:
        model = pickle.load(handle)
    rows = load("blood_transfusion").drop(columns=["donated_march_2007"])
    trials = [(r["trial"], r["model"], r[result.primary_metric], r["status"])
              for r in sorted(result.leaderboard, key=lambda r: r["trial"])]
    return result, trials, model.predict_proba(rows)


@pytest.fixture(scope="module")
def one_at_a_time(prefect_api, tmp_path_factory):
    return fit(tmp_path_factory.mktemp("one"), max_concurrent_iterations=1)


def test_two_trials_at_once_give_the_same_model_as_one(one_at_a_time, tmp_path):
    result, trials, proba = one_at_a_time
    other, other_trials, other_proba = fit(tmp_path, max_concurrent_iterations=2)
    assert len(trials) == 20 and other.concurrency == 2 and result.concurrency == 1
    assert other_trials == trials  # every trial: its configuration's label, score and status
    assert other.best_model == result.best_model and other.best_params == result.best_params
    assert np.array_equal(other_proba, proba)  # to the last bit


def test_a_dask_cluster_gives_the_same_model_as_one_process(one_at_a_time, tmp_path):
    result, trials, proba = one_at_a_time
    other, other_trials, other_proba = fit(tmp_path, task_runner="dask",
                                           max_concurrent_iterations=2)
    assert other_trials == trials
    assert other.best_model == result.best_model
    assert np.array_equal(other_proba, proba)


def test_without_iterations_the_order_is_not_imposed():
    config = parse_config(training_data="t.csv", target="y", experiment_timeout_minutes=1)
    assert not config.deterministic
    assert parse_config(training_data="t.csv", target="y", iterations=5,
                        deterministic=False).deterministic is False
