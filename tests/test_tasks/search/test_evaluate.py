"""tasks.search.trial: one candidate on every fold; boosting rounds stop early on each fold's validation
rows, and the refit takes the rounds the folds kept."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss
from support import load

from tasks.config import parse_config
from tasks.final.choice import Choice
from tasks.models.pipeline import build_pipeline
from tasks.data.inspect import inspect_data
from tasks.metrics import METRICS, early_stopping_watch
from tasks.final.refit import refit_model
from tasks.search.spaces import load_space
from tasks.data.split import SplitPlan, split_data
from tasks.search.candidates import Candidate, TrialSettings
from tasks.models.wrappers import inner_estimator
from tasks.search.evaluate import evaluate_candidate

BOOSTING = ["lightgbm", "xgboost"]


def _data(name: str, target: str, metric: str, folds: int = 3):
    frame = load(name)
    config = parse_config(training_data=name, target=target, primary_metric=metric,
                          n_cross_validations=folds)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    return profile, data


def _settings(profile, data, stop: bool) -> TrialSettings:
    n_classes = None if data.classes is None else len(data.classes)
    watch = early_stopping_watch(profile.metric, n_classes) if stop else None
    return TrialSettings(profile.roles, seed=0, n_jobs=1, early_stopping=watch,
                         metric=profile.metric.name)


def _candidate(family: str, **params) -> Candidate:
    return Candidate(0, family, {**load_space(family).defaults[0], **params})


@pytest.fixture(scope="module")
def wine():
    return _data("wine_quality", "quality", "log_loss")


@pytest.mark.parametrize("family", BOOSTING)
def test_too_many_rounds_stop_early_and_score_better(wine, family):
    profile, data = wine
    too_many = _candidate(family, n_estimators=600, learning_rate=0.3)
    watched = evaluate_candidate(too_many, data, _settings(profile, data, stop=True))
    # A metric the libraries cannot watch (no early_stopping setting): they stop on their loss.
    unwatched = evaluate_candidate(too_many, data, _settings(profile, data, stop=False))
    for result in (watched, unwatched):
        assert result.ok, result.error
        kept = result.refit_params["n_estimators"]
        assert 1 <= kept < 600
        assert result.final_params == {**too_many.params, "n_estimators": kept}
    # Every one of the 600 rounds at a high learning rate overfits the log loss of fold 0.
    fit_rows, valid_rows = data.folds[0]
    every_round = build_pipeline(family, too_many.params, task=data.task, roles=profile.roles,
                                 seed=0, n_jobs=1, n_classes=len(data.classes))
    every_round.fit(data.X.iloc[fit_rows], data.y[fit_rows])
    proba = every_round.predict_proba(data.X.iloc[valid_rows])
    overfit = log_loss(data.y[valid_rows], proba, labels=every_round.classes_)
    assert watched.fold_scores[0] < overfit - 0.05


@pytest.mark.parametrize("family", [*BOOSTING, "catboost"])
def test_string_labels_and_a_class_missing_from_the_fit_rows(family):
    # hypothyroid: string labels; one holdout whose fit rows lack the rarest class entirely.
    profile, data = _data("hypothyroid", "Class", "log_loss", folds=2)
    labels, counts = np.unique(data.y, return_counts=True)
    rare = data.y == labels[np.argmin(counts)]
    fit_rows, valid_rows = data.folds[0]
    folds = ((fit_rows[~rare[fit_rows]], np.union1d(valid_rows, np.flatnonzero(rare))),)
    holdout = replace(data, folds=folds)
    result = evaluate_candidate(_candidate(family), holdout, _settings(profile, holdout, True))
    assert result.ok, result.error
    assert result.refit_params["n_estimators"] >= 1


def test_binary_auc_is_watched_as_auc():
    profile, data = _data("credit_g", "class", "AUC_weighted")
    settings = _settings(profile, data, stop=True)
    assert settings.early_stopping == "auc"
    result = evaluate_candidate(_candidate("lightgbm", n_estimators=400), data, settings)
    assert result.ok and result.refit_params["n_estimators"] < 400


@pytest.mark.parametrize(("metric", "n_classes", "watch"), [
    ("AUC_weighted", 2, "auc"),
    ("AUC_weighted", 7, None),  # the libraries' AUC is binary: boosters watch their loss
    ("log_loss", 7, "loss"),
    ("accuracy", 2, None),
    ("normalized_root_mean_squared_error", None, "loss"),
    ("mean_absolute_error", None, None),
])
def test_what_early_stopping_watches(metric, n_classes, watch):
    assert early_stopping_watch(METRICS[metric], n_classes) == watch


def test_other_families_ignore_early_stopping(wine):
    profile, data = wine
    result = evaluate_candidate(_candidate("random_forest"), data, _settings(profile, data, True))
    assert result.ok and result.refit_params == {}


def test_the_refit_takes_the_rounds_the_folds_kept(wine):
    profile, data = wine
    settings = _settings(profile, data, stop=True)
    result = evaluate_candidate(_candidate("lightgbm", n_estimators=600, learning_rate=0.3), data,
                                settings)
    model = refit_model(Choice((result,), (1.0,), result.metrics), data, settings)
    booster = inner_estimator(model.named_steps["model"], fitted=True)
    assert booster.n_estimators == result.refit_params["n_estimators"]
    assert booster.booster_.num_trees() == booster.n_estimators * len(data.classes)
    assert np.allclose(model.predict_proba(data.X.iloc[:5]).sum(axis=1), 1.0)


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_a_trial_below_the_bar_after_its_first_fold_is_pruned(wine):
    profile, data = wine
    settings = _settings(profile, data, stop=True)
    weak = _candidate("decision_tree")
    full = evaluate_candidate(weak, data, settings)
    assert full.ok and len(full.fold_scores) == len(data.folds) == 3
    # Bars the weak tree cannot meet (a log loss of 0.1): it stops after its first fold.
    pruned = evaluate_candidate(replace(weak, prune_bars=(0.1, 0.1)), data, settings)
    assert not pruned.ok and pruned.reason == "pruned"
    assert pruned.fold_scores == full.fold_scores[:1]
    assert "pruned after fold 1 of 3: log_loss" in pruned.error
    assert pruned.predictions is None and pruned.fit_seconds < full.fit_seconds
    # Bars it meets: every fold runs, and the result is that of no bars at all.
    passed = evaluate_candidate(replace(weak, prune_bars=(99.0, 99.0)), data, settings)
    assert passed.ok and passed.metrics == full.metrics


def test_no_bar_at_the_last_fold(wine):
    profile, data = wine
    settings = _settings(profile, data, stop=True)
    weak = replace(_candidate("decision_tree"), prune_bars=(99.0, 99.0, 0.1))
    assert evaluate_candidate(weak, data, settings).ok


def test_model_size_is_the_pickled_size_of_a_fold_model(wine):
    # A forest pickles its node arrays out of band (protocol 5): counted without a second copy.
    profile, data = wine
    result = evaluate_candidate(_candidate("random_forest"), data, _settings(profile, data, True))
    assert result.ok, result.error
    fit_rows = data.folds[-1][0]
    model = build_pipeline("random_forest", result.candidate.params, task=data.task,
                           roles=profile.roles, seed=0, n_jobs=1, n_classes=len(data.classes),
                           n_rows=len(fit_rows))
    model.fit(data.X.iloc[fit_rows], data.y[fit_rows])
    assert result.model_bytes == len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
@pytest.mark.parametrize("family", [*BOOSTING, "catboost"])
def test_a_boosting_fit_stops_on_its_clock_with_the_rounds_it_has(wine, family):
    profile, data = wine
    slow = _candidate(family, n_estimators=5000, learning_rate=0.001)  # would run 5,000 rounds
    settings = replace(_settings(profile, data, stop=True), fit_seconds=0.5)
    result = evaluate_candidate(slow, data, settings)
    assert result.ok, result.error
    # Three folds of at most 0.5 s each, plus featurizing and predicting.
    assert result.fit_seconds < 8
    assert 1 <= result.refit_params["n_estimators"] < 5000
    unbounded = evaluate_candidate(_candidate(family, n_estimators=60, learning_rate=0.001),
                                   data, _settings(profile, data, stop=True))
    assert unbounded.refit_params["n_estimators"] == 60  # no clock: every round it asked for


def test_a_model_fitted_on_a_clock_pickles():
    profile, data = _data("wine_quality", "quality", "log_loss")
    pipeline = build_pipeline("xgboost", {**load_space("xgboost").defaults[0]}, task=data.task,
                              roles=profile.roles, seed=0, n_jobs=1)
    from tasks.models.pipeline import fit_model

    rows, valid = data.folds[0]
    features = pipeline[:-1].fit(data.X.iloc[rows], data.y[rows])
    fit_model(pipeline[-1], features.transform(data.X.iloc[rows]), data.y[rows], None,
              (features.transform(data.X.iloc[valid]), data.y[valid]), "loss", seconds=5.0)
    restored = pickle.loads(pickle.dumps(pipeline))
    assert restored.predict_proba(data.X.iloc[valid[:5]]).shape[0] == 5


@pytest.fixture
def stopped_on(monkeypatch):
    """What each booster fit was given, as the library saw it: (fitted rows, rows it stops on),
    both as float32 matrices. The real fit runs."""
    import catboost
    import lightgbm
    import xgboost

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    for cls in (lightgbm.LGBMClassifier, xgboost.XGBClassifier, catboost.CatBoostClassifier):
        def spy(self, X, y, *args, _fit=cls.fit, **kwargs):
            (watched, _), = kwargs["eval_set"]
            seen.append((np.asarray(X, np.float32), np.asarray(watched, np.float32)))
            return _fit(self, X, y, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", spy)
    return seen


def _numbered():
    """Binary data whose rows a featurized matrix still names: continuous columns only, which
    boosting's featurizing passes through (as float32)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=450, n_features=5, n_informative=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).assign(y=np.where(y, "p", "n"))
    config = parse_config(training_data="numbered", target="y", task="classification",
                          n_cross_validations=3)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    rows = {r.tobytes(): i for i, r in enumerate(data.X.to_numpy(np.float32))}
    assert len(rows) == len(frame)
    return profile, data, lambda matrix: {rows[r.tobytes()] for r in matrix}


@pytest.mark.parametrize("family", [*BOOSTING, "catboost"])
def test_boosting_stops_on_fit_rows_the_validation_rows_never_score(family, stopped_on):
    profile, data, rows_of = _numbered()
    settings = replace(_settings(profile, data, stop=True), stop_share=0.1)
    result = evaluate_candidate(_candidate(family, n_estimators=300), data, settings)
    assert result.ok, result.error
    assert len(stopped_on) == len(data.folds)
    for (fitted, watched), (fit_rows, valid_rows) in zip(stopped_on, data.folds, strict=True):
        fitted, watched = rows_of(fitted), rows_of(watched)
        assert watched and not watched & set(valid_rows)
        assert not watched & fitted and watched | fitted == set(fit_rows)
        assert len(watched) < len(fit_rows) / 3
    # Before: the fold's validation rows, which then score the model.
    stopped_on.clear()
    evaluate_candidate(_candidate(family, n_estimators=300), data,
                       replace(settings, stop_share=None))
    assert [rows_of(w) for _, w in stopped_on] == [set(v) for _, v in data.folds]


def test_the_stopping_rows_follow_the_seed(stopped_on):
    profile, data, rows_of = _numbered()
    settings = replace(_settings(profile, data, stop=True), stop_share=0.1)
    runs = []
    for seed in (0, 0, 1):
        stopped_on.clear()
        result = evaluate_candidate(_candidate("lightgbm", n_estimators=300), data,
                                    replace(settings, seed=seed))
        runs.append(([rows_of(w) for _, w in stopped_on], result))
    (first, a), (again, b), (other, _) = runs
    assert first == again and np.array_equal(a.predictions, b.predictions)
    assert a.refit_params == b.refit_params
    assert first != other
