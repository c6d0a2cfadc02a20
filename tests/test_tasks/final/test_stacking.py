"""The StackEnsemble (tasks.final.stacking, its estimators) and the choice among single, voting, stack."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from trials import candidate, by_metric, run_trials

from tasks.final.choice import STACK, VOTING
from tasks.final.ensemble import choose_model, stack_ensemble, voting_ensemble
from tasks.models.ensembles import stack_features
from tasks.metrics import METRICS, score_all
from tasks.final.refit import refit_model
from tasks.final.stacking import MAX_MEMBERS, meta_learner, pick_members
from tasks.search.candidates import TrialSettings
from tasks.models.predict import predict_scores

ROUNDS = 15


@pytest.fixture(scope="module")
def credit():
    return run_trials("credit_g", "class", "classification", [
        candidate(0, "logistic_regression"), candidate(1, "random_forest", n_estimators=50),
        candidate(2, "knn"), candidate(3, "lightgbm"), candidate(4, "lightgbm", num_leaves=7),
    ])


@pytest.fixture(scope="module")
def concrete():
    return run_trials("concrete", "compressive_strength", "regression", [
        candidate(0, "elastic_net"), candidate(1, "random_forest", n_estimators=50),
        candidate(2, "knn"), candidate(3, "lightgbm"),
    ])


@pytest.fixture(scope="module")
def thyroid():
    # Four classes, one of them with two rows: a fold of the meta-learner may lack it.
    return run_trials("hypothyroid", "Class", "classification", [
        candidate(0, "logistic_regression"), candidate(1, "lightgbm"),
        candidate(2, "random_forest", n_estimators=50),
    ], folds=2)


def _settings(run):
    from tasks.features.roles import detect_roles

    return TrialSettings(roles=detect_roles(run.data.X), seed=0, n_jobs=1)


def test_pick_members_takes_each_family_best_first_then_fills_by_rank(credit):
    ranked = by_metric(credit, "AUC_weighted")
    picked = pick_members(ranked, limit=3)
    assert len(picked) == 3
    families = [r.candidate.family for r in picked]
    assert len(set(families)) == 3  # 4 families exist: three different ones fill three places
    best_of = {}
    for r in ranked:
        best_of.setdefault(r.candidate.family, r)
    assert all(best_of[r.candidate.family] is r for r in picked)
    assert picked == sorted(picked, key=ranked.index)  # rank order kept
    everything = pick_members(ranked, limit=MAX_MEMBERS)
    assert len(everything) == len(ranked) and set(map(id, everything)) == set(map(id, ranked))


@pytest.mark.parametrize("fixture, metric", [
    ("credit", "AUC_weighted"), ("credit", "log_loss"),
    ("concrete", "normalized_root_mean_squared_error"), ("thyroid", "log_loss"),
])
def test_stack_score_is_cross_validated_not_in_sample(request, fixture, metric):
    run = request.getfixturevalue(fixture)
    data = run.data
    choice = stack_ensemble(by_metric(run, metric), data, seed=0)
    assert choice is not None and choice.kind == STACK and choice.is_ensemble
    X = stack_features([m.predictions for m in choice.members], data.task)
    # The meta-learner refit on every row and scored on those same rows: what must NOT be reported.
    in_sample = clone(meta_learner(data.task)).fit(X, data.y_valid)
    pred = in_sample.predict_proba(X) if data.task == "classification" else in_sample.predict(X)
    if data.task == "classification" and pred.shape[1] < len(data.classes):
        full = np.zeros((len(X), len(data.classes)))
        full[:, in_sample.classes_] = pred
        pred = full
    optimistic = score_all(data.task, data.y_valid, pred, None, data.y_range)[metric]
    reported = choice.metrics[metric]
    assert reported != pytest.approx(optimistic, rel=1e-9)
    assert not METRICS[metric].better(reported, optimistic)  # out of fold is no better
    # The meta-learner kept for refitting is the one fitted on all rows.
    np.testing.assert_allclose(_coef(choice.meta), _coef(in_sample), rtol=1e-4, atol=1e-6)


def _coef(meta) -> np.ndarray:
    return (meta[-1] if hasattr(meta, "steps") else meta).coef_


@pytest.mark.parametrize("fixture, metric", [
    ("credit", "AUC_weighted"), ("credit", "log_loss"), ("credit", "accuracy"),
    ("concrete", "normalized_root_mean_squared_error"), ("concrete", "r2_score"),
])
def test_choice_is_the_best_of_single_voting_and_stack(request, fixture, metric):
    run = request.getfixturevalue(fixture)
    m = METRICS[metric]
    ranked = by_metric(run, metric)
    options = {"single": ranked[0].metrics[metric]}
    vote = voting_ensemble(ranked, run.data, m, ROUNDS)
    if vote is not None:
        options[VOTING] = vote.metrics[metric]
    options[STACK] = stack_ensemble(ranked, run.data, seed=0).metrics[metric]
    chosen = choose_model(ranked, run.data, m, rounds=ROUNDS, enabled=True)
    best = max(options.values()) if m.greater_is_better else min(options.values())
    assert chosen.metrics[metric] == best
    assert chosen.kind == next(k for k, v in options.items() if v == best)
    off = choose_model(ranked, run.data, m, rounds=ROUNDS, enabled=False)
    assert off.kind == "single" and off.members == (ranked[0],)


def test_stack_is_chosen_somewhere_on_real_data(credit, concrete):
    # The case the StackEnsemble exists for occurs on this data: it beats single and voting.
    kinds = {
        choose_model(by_metric(run, name), run.data, METRICS[name], rounds=ROUNDS, enabled=True).kind
        for run, name in [(credit, "AUC_weighted"), (credit, "log_loss"), (credit, "accuracy"),
                          (concrete, "normalized_root_mean_squared_error"), (concrete, "r2_score")]
    }
    assert STACK in kinds


@pytest.mark.parametrize("fixture, metric", [("credit", "log_loss"), ("thyroid", "log_loss"),
                                             ("concrete", "r2_score")])
def test_refit_stack_predicts_pickles_and_keeps_its_meta_learner(request, fixture, metric):
    run = request.getfixturevalue(fixture)
    data = run.data
    choice = stack_ensemble(by_metric(run, metric), data, seed=0)
    model = refit_model(choice, data, _settings(run))
    stacked = model.named_steps["model"]
    assert len(stacked.estimators_) == len(choice.members)
    # Frozen: refitting the members did not refit the meta-learner on their in-sample outputs.
    np.testing.assert_array_equal(_coef(stacked.final_estimator.estimator), _coef(choice.meta))
    X_new = data.X.iloc[:40]
    pred = predict_scores(model, X_new, data.classes)
    if data.task == "classification":
        assert list(model.classes_) == list(data.classes)
        assert pred.shape == (40, len(data.classes))
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-9)
        # What the meta-learner makes of the refit members' own probabilities.
        members = [predict_scores(est, X_new, data.classes) for est in stacked.estimators_]
        expected = np.zeros_like(pred)
        expected[:, choice.meta.classes_] = choice.meta.predict_proba(
            stack_features(members, "classification"))
        np.testing.assert_allclose(pred, expected)
    else:
        members = [est.predict(X_new) for est in stacked.estimators_]
        np.testing.assert_allclose(pred, choice.meta.predict(stack_features(members, "regression")))
        assert (_coef(choice.meta) >= 0).all()  # non-negative weights
    clone_ = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(predict_scores(clone_, X_new, data.classes), pred)


def test_stack_features_are_log_odds_and_log_probabilities():
    binary = np.array([[0.2, 0.8], [0.5, 0.5]])
    three = np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(stack_features([binary, binary], "classification"),
                               np.log(binary[:, 1:] / binary[:, :1]).repeat(2, axis=1))
    np.testing.assert_allclose(stack_features([three], "classification"), np.log(three))
    values = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    np.testing.assert_array_equal(stack_features(values, "regression"), [[1, 3], [2, 4]])
    assert np.isfinite(stack_features([np.array([[0.0, 1.0]])], "classification")).all()


def test_no_stack_where_the_meta_learner_would_cost_too_much(credit, monkeypatch):
    import tasks.final.stacking

    ranked = by_metric(credit, "log_loss")
    assert stack_ensemble(ranked, credit.data, seed=0) is not None
    rows, members = len(credit.data.y_valid), len(pick_members(ranked))
    # Just under the work the credit data needs (rows x log-odds columns x classes): no stack.
    monkeypatch.setattr(tasks.final.stacking, "MAX_META_WORK", rows * members * 2 - 1)
    assert stack_ensemble(ranked, credit.data, seed=0) is None
    chosen = choose_model(ranked, credit.data, METRICS["log_loss"], rounds=ROUNDS, enabled=True)
    assert chosen.kind != STACK
