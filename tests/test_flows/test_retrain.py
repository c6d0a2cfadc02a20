"""Retraining: where the search starts (tasks.search.study.warm_start_points on a real journal file) and
the automl-retrain flow end to end under the Prefect test API."""

from __future__ import annotations

import optuna
import pytest
from support import dataset_path
from optuna.trial import TrialState

from tasks.metrics import METRICS
from tasks.search.sampling import ask_candidate, first_points, tell_result
from tasks.search.study import open_storage, open_study, warm_start_points
from tasks.search.candidates import TrialResult

AUC = METRICS["AUC_weighted"]
FAMILIES = ["lightgbm", "logistic_regression", "random_forest"]


def finished_study(storage, tmp_path, name, scores, experiment="exp", registered=True):
    """A study whose trials scored `scores` in order (None: failed)."""
    study = open_study(name=name, workdir=tmp_path, storage=storage, maximize=True, seed=0,
                       attrs={"experiment": experiment, "mlflow_run_id": name})
    queue = first_points(study, FAMILIES)
    for score in scores:
        trial, candidate = ask_candidate(study, FAMILIES, queue)
        result = (TrialResult(candidate, True, {AUC.name: score}) if score is not None
                  else TrialResult(candidate, False, error="boom", reason="error"))
        tell_result(study, trial, result, AUC.name, "run")
    if registered:
        study.set_user_attr("registered_version", "1")
    return study


def params_by_score(study):
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    return [t.params for t in sorted(done, key=lambda t: -t.value)]


def test_the_newest_registered_study_gives_its_best_configurations_first(tmp_path):
    storage = open_storage(None, tmp_path)  # the journal file a run keeps in its workdir
    assert warm_start_points(storage, "exp") == []
    finished_study(storage, tmp_path, "exp-old", [0.9, 0.95])
    previous = finished_study(storage, tmp_path, "exp-new", [0.6, None, 0.8, 0.7, 0.75, 0.65])
    finished_study(storage, tmp_path, "exp-crashed", [0.99], registered=False)
    finished_study(storage, tmp_path, "other-1", [0.99], experiment="other")

    points = warm_start_points(open_storage(None, tmp_path), "exp", top=3)
    assert points == params_by_score(previous)[:3]
    assert points[0]["family"] in FAMILIES and all(p["family"] for p in points)
    assert warm_start_points(storage, "exp", top=0) == []
    assert len(warm_start_points(storage, "exp", top=50)) == 5  # the completed ones, no failure


def test_warm_start_points_go_first_and_only_for_families_still_allowed(tmp_path):
    storage = open_storage(None, tmp_path)
    previous = finished_study(storage, tmp_path, "exp-1", [0.7, 0.9, 0.8])
    points = warm_start_points(storage, "exp", top=3)
    fresh = open_study(name="exp-2", workdir=tmp_path, storage=storage, maximize=True, seed=0)
    allowed = sorted({p["family"] for p in points})[:1]
    queue = first_points(fresh, allowed, points)
    kept = [p for p in points if p["family"] in allowed]
    assert kept and queue[: len(kept)] == kept
    assert all(p["family"] in allowed for p in queue)
    assert queue.count(kept[0]) == 1
    assert params_by_score(previous)[0] == points[0]


@pytest.mark.slow
def test_retrain_warm_starts_from_the_previous_run(prefect_api, tmp_path):
    from flows.automl import automl_flow
    from flows.retrain import retrain_flow
    from tasks.config import parse_config

    config = parse_config(
        training_data=str(dataset_path("blood_transfusion")), target="donated_march_2007",
        iterations=3, allowed_models=["LogisticRegression", "DecisionTree"], validation_size=0.2,
        max_concurrent_iterations=1, enable_ensembling=False, experiment_name="nightly",
        workdir=str(tmp_path / "runs"),
    )
    first = automl_flow(config)
    storage = open_storage(None, config.workdir_path)
    expected = warm_start_points(storage, "nightly", top=2)
    cold = optuna.load_study(study_name=study_of(storage, first.run_id), storage=storage).trials
    # A cold start would begin with the families' defaults again: the warm one must not.
    assert len(expected) == 2 and expected != [t.params for t in cold[:2]]

    again = retrain_flow(config.model_copy(update={"iterations": 3}), warm_start_trials=2)
    assert again.model_version == "2" and again.run_id != first.run_id
    trials = optuna.load_study(study_name=study_of(storage, again.run_id), storage=storage).trials
    assert [t.params for t in trials[:2]] == expected


def study_of(storage, run_id: str) -> str:
    """The study of the run whose MLflow parent run is run_id."""
    names = [s.study_name for s in storage.get_all_studies()
             if s.user_attrs.get("mlflow_run_id") == run_id]
    assert len(names) == 1, names
    return names[0]
