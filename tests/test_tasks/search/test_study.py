"""tasks.search.study: the search's state in Optuna storage (journal file and RDB), and resuming it."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState

from tasks.metrics import METRICS
from tasks.search.study import INTERRUPTED, find_unfinished, open_storage, open_study, restore_trials
from tasks.search.sampling import ask_candidate, first_points, tell_result
from tasks.search.candidates import TrialResult

AUC = METRICS["AUC_weighted"]
FAMILIES = ["lightgbm", "logistic_regression", "random_forest"]


@pytest.fixture(params=["journal", "rdb"])
def storage(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}" if request.param == "rdb" else None
    return open_storage(url, tmp_path)


def study_of(storage, tmp_path, name="exp-1", experiment="exp"):
    return open_study(name=name, workdir=tmp_path, storage=storage, maximize=True, seed=0,
                      attrs={"experiment": experiment, "mlflow_run_id": "r1"})


def test_the_newest_unregistered_study_of_an_experiment_is_the_one_to_resume(storage, tmp_path):
    assert find_unfinished(storage, "exp") is None
    study_of(storage, tmp_path, "exp-1")
    newer = study_of(storage, tmp_path, "exp-2")
    study_of(storage, tmp_path, "other-1", experiment="other")
    assert find_unfinished(storage, "exp") == "exp-2"
    newer.set_user_attr("registered_version", "1")
    assert find_unfinished(storage, "exp") == "exp-1"


def test_an_interrupted_study_gives_back_its_finished_trials_and_its_running_ones(
        storage, tmp_path):
    study = study_of(storage, tmp_path)
    queue = first_points(study, FAMILIES)
    predictions = tmp_path / "trials"
    predictions.mkdir()
    finished = []
    for score in (0.7, None):  # one complete, one failed
        trial, candidate = ask_candidate(study, FAMILIES, queue)
        result = (TrialResult(candidate, True, {AUC.name: score}, np.full(3, score))
                  if score else TrialResult(candidate, False, error="boom", reason="error"))
        if score:
            np.save(predictions / f"{candidate.number}.npy", result.predictions)
        tell_result(study, trial, result, AUC.name, "run")
        finished.append(candidate)
    running, candidate = ask_candidate(study, FAMILIES, queue)  # killed while this one ran
    study.enqueue_trial(queue[0])  # and this one was queued, never started

    again = study_of(storage, tmp_path)
    results, interrupted = restore_trials(again, predictions)
    assert [r.candidate for r in results] == finished
    assert results[0].ok and results[0].metrics == {AUC.name: 0.7}
    np.testing.assert_array_equal(results[0].predictions, np.full(3, 0.7))
    assert not results[1].ok and results[1].reason == "error"
    assert [t.number for t in interrupted] == [candidate.number]
    states = {t.number: (t.state, t.user_attrs.get("error")) for t in again.trials}
    assert states[candidate.number] == (TrialState.FAIL, INTERRUPTED)
    assert [s for s, _ in states.values()].count(TrialState.WAITING) == 0

    retry = [dict(t.params) for t in interrupted]
    queue = first_points(again, FAMILIES, retry)
    assert queue[0] == retry[0]
    assert queue.count(retry[0]) == 1
    tried = [t.params for t in again.trials if t.state == TrialState.COMPLETE]
    assert not any(p in tried for p in queue)


def test_a_trial_stopped_while_being_asked_is_not_retried(storage, tmp_path):
    study = study_of(storage, tmp_path)
    half = study.ask()
    half.suggest_categorical("family", FAMILIES)  # killed before its parameters were drawn
    results, interrupted = restore_trials(study_of(storage, tmp_path), tmp_path)
    assert results == [] and interrupted == []
    assert study_of(storage, tmp_path).trials[0].user_attrs["reason"] == "interrupted"
