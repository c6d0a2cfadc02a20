"""tasks.final.ensemble (greedy VotingEnsemble selection, the choice among single, voting and
stack) and the ensemble estimators of tasks.models.ensembles. The StackEnsemble has its own
test_stacking.py."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from support import load
from trials import Run, candidate, by_metric, run_trials
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from tasks.config import parse_config
from tasks.final.ensemble import _greedy_selection, choose_model
from tasks.models.ensembles import EnsembleClassifier, EnsembleRegressor
from tasks.models.pipeline import build_pipeline
from tasks.features.roles import detect_roles
from tasks.data.inspect import inspect_data
from tasks.metrics import METRICS, score_all
from tasks.search.spaces import load_space
from tasks.data.sets import SearchData
from tasks.data.split import SplitPlan, split_data
from tasks.search.candidates import Candidate, TrialResult, TrialSettings
from tasks.search.evaluate import evaluate_candidate

ROUNDS = 15


@pytest.fixture(scope="module")
def credit() -> Run:
    return run_trials(
        "credit_g", "class", "classification",
        [
            candidate(0, "logistic_regression"),
            candidate(1, "random_forest", n_estimators=50),
            candidate(2, "knn"),
            candidate(3, "lightgbm"),
        ],
    )


@pytest.fixture(scope="module")
def concrete() -> Run:
    return run_trials(
        "concrete", "compressive_strength", "regression",
        [
            candidate(0, "elastic_net"),
            candidate(1, "random_forest", n_estimators=50),
            candidate(2, "knn"),
        ],
    )


def _blend(choice) -> np.ndarray:
    stacked = np.stack([m.predictions for m in choice.members])
    return np.average(stacked, axis=0, weights=choice.weights)


# ---------------------------------------------------------------- choose_model


def test_ensemble_beats_best_single_on_auc(credit):
    ranked = by_metric(credit, "AUC_weighted")
    metric = METRICS["AUC_weighted"]
    choice = choose_model(ranked, credit.data, metric, rounds=ROUNDS, enabled=True, stack=False)
    # On these four real models a blend does beat the best one: the case under test occurs.
    assert choice.is_ensemble
    assert metric.better(choice.metrics["AUC_weighted"], ranked[0].metrics["AUC_weighted"])
    assert all(any(m is r for r in ranked) for m in choice.members)
    assert len({id(m) for m in choice.members}) == len(choice.members)
    assert all(w > 0 for w in choice.weights) and sum(choice.weights) == ROUNDS
    assert choice.label.startswith("VotingEnsemble(")
    for member in choice.members:
        assert member.candidate.label in choice.label


@pytest.mark.parametrize("name", ["AUC_weighted", "log_loss", "accuracy", "f1_score_weighted"])
def test_ensemble_metrics_are_those_of_the_blend(credit, name):
    metric = METRICS[name]
    choice = choose_model(by_metric(credit, name), credit.data, metric, rounds=ROUNDS, enabled=True, stack=False)
    # On these four real models a blend beats the best one for each of these metrics.
    assert choice.is_ensemble
    data = credit.data
    expected = score_all(data.task, data.y_valid, _blend(choice), data.weights_valid, data.y_range)
    assert choice.metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert choice.metrics[key] == pytest.approx(value, rel=1e-12), key
    # Not a member's own scores passed through.
    assert all(choice.metrics[name] != m.metrics[name] for m in choice.members)


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if m.task == "classification"])
def test_ensemble_only_when_it_beats_best_single(credit, name):
    metric = METRICS[name]
    ranked = by_metric(credit, name)
    best = ranked[0]
    choice = choose_model(ranked, credit.data, metric, rounds=ROUNDS, enabled=True, stack=False)
    if choice.is_ensemble:
        assert metric.better(choice.metrics[name], best.metrics[name])
    else:
        assert choice.members == (best,) and choice.weights == (1.0,)
        assert choice.metrics == best.metrics
        # Either the greedy search kept the best model alone, or its blend did not beat it.
        data = credit.data
        blended = np.zeros_like(best.predictions)
        counts = _greedy_selection(ranked, data, metric, ROUNDS)
        for index, count in counts.items():
            blended += count * ranked[index].predictions
        blended /= sum(counts.values())
        score = metric(data.y_valid, blended, data.weights_valid, data.y_range)
        assert len(counts) == 1 or not metric.better(score, best.metrics[name])


def test_guard_rejects_a_greedy_blend_that_does_not_beat_best(credit):
    # balanced_accuracy reads labels at 0.5: with each trial's positive probability shifted
    # (seeded), the greedy rounds mix in another member, yet the final blend does not beat the
    # best model alone, so the best model alone must be chosen.
    name = "balanced_accuracy"
    metric, data = METRICS[name], credit.data
    rng, shifted = np.random.default_rng(7), []
    for result in credit.results:
        proba = result.predictions.copy()
        proba[:, 1] = np.clip(proba[:, 1] + rng.uniform(-0.15, 0.15), 0, 1)
        proba[:, 0] = 1 - proba[:, 1]
        metrics = score_all(data.task, data.y_valid, proba, data.weights_valid, data.y_range,
                            data.positive)
        shifted.append(replace(result, predictions=proba, metrics=metrics))
    ranked = sorted(shifted, key=lambda r: r.metrics[name], reverse=True)
    counts = _greedy_selection(ranked, data, metric, ROUNDS)
    assert len(counts) >= 2, "the case under test (a greedy mix) no longer occurs on this data"
    choice = choose_model(ranked, data, metric, rounds=ROUNDS, enabled=True, stack=False)
    assert not choice.is_ensemble
    assert choice.members[0] is ranked[0]


@pytest.mark.parametrize("name", ["AUC_weighted", "log_loss", "accuracy"])
def test_disabled_returns_single_best(credit, name):
    ranked = by_metric(credit, name)
    choice = choose_model(ranked, credit.data, METRICS[name], rounds=ROUNDS, enabled=False)
    assert not choice.is_ensemble
    assert choice.members[0] is ranked[0]
    assert choice.metrics == ranked[0].metrics
    assert choice.label == ranked[0].candidate.label


def test_one_round_returns_single_best(credit):
    ranked = by_metric(credit, "AUC_weighted")
    choice = choose_model(ranked, credit.data, METRICS["AUC_weighted"], rounds=1, enabled=True, stack=False)
    assert choice.members == (ranked[0],)


def test_results_without_predictions_are_not_members(credit):
    ranked = by_metric(credit, "AUC_weighted")
    # Same scores, but predictions dropped (as a trial that kept none would be).
    stripped = [ranked[0]] + [
        TrialResult(r.candidate, True, r.metrics, None) for r in ranked[1:]
    ]
    metric = METRICS["AUC_weighted"]
    choice = choose_model(stripped, credit.data, metric, rounds=ROUNDS, enabled=True, stack=False)
    assert choice.members == (ranked[0],)


def test_regression_choice(concrete):
    name = "normalized_root_mean_squared_error"
    metric = METRICS[name]
    ranked = by_metric(concrete, name)
    assert ranked[0].metrics[name] < ranked[-1].metrics[name]  # lower is better: sorted ascending
    choice = choose_model(ranked, concrete.data, metric, rounds=ROUNDS, enabled=True, stack=False)
    if choice.is_ensemble:
        assert choice.metrics[name] < ranked[0].metrics[name]
        data = concrete.data
        expected = score_all(data.task, data.y_valid, _blend(choice), None, data.y_range)
        assert choice.metrics[name] == pytest.approx(expected[name], rel=1e-12)
    else:
        assert choice.members == (ranked[0],)
    off = choose_model(ranked, concrete.data, metric, rounds=ROUNDS, enabled=False)
    assert off.members == (ranked[0],)


@pytest.mark.parametrize("stack", [False, True])
def test_an_ensemble_too_slow_to_refit_gives_up_its_costliest_member(credit, stack):
    metric = METRICS["AUC_weighted"]
    ranked = by_metric(credit, "AUC_weighted")
    free = choose_model(ranked, credit.data, metric, rounds=ROUNDS, enabled=True, stack=stack)
    assert free.is_ensemble and len(free.members) >= 3, "the case under test no longer occurs"
    # The best single model is always affordable: the costliest of the others (by measured
    # time, which varies with the machine's load, hence not the costliest of all).
    costliest = max((m for m in free.members if m is not ranked[0]), key=lambda m: m.fit_seconds)
    cut = choose_model(ranked, credit.data, metric, rounds=ROUNDS, enabled=True, stack=stack,
                       affordable=lambda members: costliest not in members)
    assert costliest not in cut.members
    # The choice is remade without it, and still beats the single best, or is the single best.
    assert cut.members == (ranked[0],) or metric.better(cut.metrics[metric.name],
                                                        ranked[0].metrics[metric.name])


def test_no_ensemble_when_no_two_members_fit(credit):
    metric = METRICS["AUC_weighted"]
    ranked = by_metric(credit, "AUC_weighted")
    choice = choose_model(ranked, credit.data, metric, rounds=ROUNDS, enabled=True,
                          affordable=lambda members: len(members) < 2)
    assert choice.members == (ranked[0],) and choice.metrics == ranked[0].metrics


# ---------------------------------------------------------------- ensemble estimators


def _members(task: str, roles, keys: list[str]) -> list[tuple[str, object]]:
    out = []
    for key in keys:
        params = dict(load_space(key).defaults[0])
        if "n_estimators" in params:
            params["n_estimators"] = 30
        out.append((key, build_pipeline(key, params, task=task, roles=roles, seed=0, n_jobs=1)))
    return out


@pytest.fixture(scope="module")
def credit_rows():
    frame = load("credit_g").sample(400, random_state=1)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    return X.iloc[:300], y[:300], X.iloc[300:], y[300:]


def test_ensemble_classifier_fit_predict_proba_pickle(credit_rows):
    X, y, X_new, _ = credit_rows
    roles = detect_roles(X)
    # xgboost wraps label encoding, so members with differently built class handling are mixed.
    members = _members("classification", roles, ["logistic_regression", "xgboost", "random_forest"])
    model = EnsembleClassifier(members, [3.0, 1.0, 2.0])
    with threadpool_limits(limits=1):
        model.fit(X, y)
    assert list(model.classes_) == sorted(set(y))
    proba = model.predict_proba(X_new)
    assert proba.shape == (len(X_new), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # Soft voting: the weighted average of the fitted members' probabilities.
    member_proba = [est.predict_proba(X_new) for est in model.estimators_]
    np.testing.assert_allclose(proba, np.average(member_proba, axis=0, weights=[3.0, 1.0, 2.0]))
    pred = model.predict(X_new)
    np.testing.assert_array_equal(pred, model.classes_[np.argmax(proba, axis=1)])
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict_proba(X_new), proba)
    np.testing.assert_array_equal(clone.predict(X_new), pred)


def test_ensemble_classifier_members_are_clones(credit_rows):
    X, y, _, _ = credit_rows
    members = _members("classification", detect_roles(X), ["logistic_regression", "knn"])
    model = EnsembleClassifier(members, [1.0, 1.0]).fit(X, y)
    assert all(est is not orig for est, (_, orig) in zip(model.estimators_, members))
    assert not hasattr(members[0][1], "classes_")  # the unfitted templates stay unfitted


def test_ensemble_classifier_multiclass_in_pipeline_with_weights():
    frame = load("hpc_jobs").sample(500, random_state=0)
    X, y = frame.drop(columns="class"), frame["class"].to_numpy()
    w = np.where(y == "L", 3.0, 1.0)
    members = _members("classification", detect_roles(X), ["logistic_regression", "lightgbm"])
    model = Pipeline([("model", EnsembleClassifier(members, [1.0, 2.0]))])
    model.fit(X, y, model__sample_weight=w)
    proba = model.predict_proba(X.head(20))
    assert proba.shape == (20, len(np.unique(y)))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.classes_) == sorted(np.unique(y))
    unweighted = Pipeline([("model", EnsembleClassifier(members, [1.0, 2.0]))]).fit(X, y)
    assert not np.allclose(unweighted.predict_proba(X.head(20)), proba)  # weights reach members


def test_ensemble_regressor_fit_predict_pickle():
    frame = load("concrete").sample(400, random_state=0)
    X, y = frame.drop(columns="compressive_strength"), frame["compressive_strength"].to_numpy()
    roles = detect_roles(X)
    members = _members("regression", roles, ["elastic_net", "random_forest", "knn"])
    model = EnsembleRegressor(members, [1.0, 4.0, 2.0])
    model.fit(X.iloc[:300], y[:300])
    X_new = X.iloc[300:]
    pred = model.predict(X_new)
    assert pred.shape == (len(X_new),) and np.isfinite(pred).all()
    member_pred = [est.predict(X_new) for est in model.estimators_]
    np.testing.assert_allclose(pred, np.average(member_pred, axis=0, weights=[1.0, 4.0, 2.0]))
    # Better than predicting the mean: the members really were fitted on the rows.
    assert model.score(X_new, y[300:]) > 0.3
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.predict(X_new), pred)
    assert list(model.feature_names_in_) == list(X.columns)


class _ThreadsSeen(LogisticRegression):
    """A real classifier that notes the OpenMP thread count its fitting thread would use."""

    def fit(self, X, y, sample_weight=None):
        from threadpoolctl import threadpool_info

        self.openmp_threads_ = [p["num_threads"] for p in threadpool_info()
                                if p["user_api"] == "openmp"]
        return super().fit(X, y, sample_weight=sample_weight)


def test_members_fit_in_threads_under_the_callers_thread_caps(credit_rows):
    import os
    import threading

    from threadpoolctl import threadpool_info

    X, y, _, _ = credit_rows
    numeric = X.select_dtypes("number")
    fresh: list[list[int]] = []
    probe = threading.Thread(target=lambda: fresh.append(
        [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]))
    probe.start()
    probe.join()
    if not fresh[0] or max(fresh[0]) < 2 or (os.cpu_count() or 1) < 2:
        pytest.skip("a new thread's OpenMP default is already one thread here")
    # A new thread starts from OpenMP's default (every core), not from the caller's cap.
    model = EnsembleClassifier([(f"m{i}", _ThreadsSeen(max_iter=200)) for i in range(3)],
                               [1.0, 1.0, 1.0])
    with threadpool_limits(limits={"openmp": 1}):
        model.fit(numeric, y)
    assert all(est.openmp_threads_ and max(est.openmp_threads_) == 1 for est in model.estimators_)
