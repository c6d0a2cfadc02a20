"""The search step (flows.search): its settings from the config, and one real search read back
from MLflow, the Optuna journal and the trials' prediction files."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from support import dataset_path

from flows.automl import automl_flow
from flows.search import SearchSettings
from tasks.config import parse_config
from tasks.search.study import open_storage


def settings(**knobs: object) -> SearchSettings:
    return SearchSettings.of(parse_config(training_data="t.csv", target="y", **knobs))


def test_settings_follow_the_config():
    given = settings(experiment_name="churn", iterations=40, max_concurrent_iterations=3,
                     experiment_exit_score=0.93, early_stopping_patience=7,
                     enable_pruning=False, iteration_timeout_minutes=2.5, max_memory_mb=2048,
                     max_memory_mb_per_iteration=512)
    # iterations given: a deterministic run, its results told in ask order 7 asks late.
    assert given == SearchSettings("churn", 40, 3, exit_score=0.93, patience=7, pruning=False,
                                   timeout_minutes=2.5, memory_mb=512, lag=7, run_memory_mb=2048)
    assert settings(iterations=40, max_concurrent_iterations=12).lag == 11  # never waits
    assert settings(iterations=40, deterministic=False).lag is None
    assert settings(early_stopping_patience=7, enable_early_stopping=False).patience is None
    defaults = settings(max_concurrent_iterations=2)
    assert defaults.patience == 20 and defaults.pruning is True
    assert defaults.exit_score is None and defaults.timeout_minutes is None
    assert defaults.memory_mb is None and defaults.run_memory_mb is None
    assert defaults.iterations == 1000
    assert defaults.lag is None  # a time limit ends it: told as trials finish


@pytest.fixture(scope="module")
def searched(prefect_api, plugin, tmp_path_factory):
    """Six trials on credit_g, one family of them failing every time (tests/misbehaving.py)."""
    workdir = tmp_path_factory.mktemp("search")
    config = parse_config(training_data=str(dataset_path("credit_g")), target="class",
                          iterations=6, max_concurrent_iterations=2, workdir=str(workdir),
                          allowed_models=["LightGBM", "LogisticRegression", "Raising"],
                          experiment_name="searched", random_state=3)
    result = automl_flow(config)
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri)
    experiment = client.get_experiment_by_name("searched")
    children = client.search_runs([experiment.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    return config, result, client, children


def test_the_best_so_far_curve_never_goes_down_and_reaches_the_last_trial(searched):
    config, result, client, children = searched
    curve = sorted(client.get_metric_history(result.run_id, "best_so_far_AUC_weighted"),
                   key=lambda point: point.step)
    assert len(children) == result.trials == 6
    values = [point.value for point in curve]
    assert values == sorted(values), values
    steps = [point.step for point in curve]
    assert steps[-1] == len(children) - 1 and all(0 <= s < len(children) for s in steps)
    best_child = max(c.data.metrics["AUC_weighted"] for c in children
                     if c.data.tags["status"] == "ok")
    assert curve[-1].value == pytest.approx(best_child)


def test_each_ok_trial_saved_its_predictions_beside_the_study(searched):
    config, result, _, children = searched
    client = MlflowClient(config.resolved_tracking_uri)
    study_name = client.get_run(result.run_id).data.tags["automl.optuna_study"]
    assert study_name.startswith("searched-")
    folder = config.workdir_path / "trials" / study_name
    status = {int(c.data.tags["trial_number"]): c.data.tags["status"] for c in children}
    assert sorted(status) == list(range(6))
    assert "failed" in status.values() and "ok" in status.values()
    ok = {n for n, s in status.items() if s == "ok"}
    assert {int(p.stem) for p in folder.glob("*.npy")} == ok  # none for the failed trials
    for number in ok:
        predictions = np.load(folder / f"{number}.npy")
        assert predictions.shape[0] == 1000  # out-of-fold: every row of the table once
    # The Optuna journal in the workdir holds the same trials under the same study name.
    study = optuna.load_study(study_name=study_name,
                              storage=open_storage(None, config.workdir_path))
    told = {t.number: t.state for t in study.trials}
    assert {n for n, s in told.items() if s == TrialState.COMPLETE} == ok
    assert {n for n, s in told.items() if s == TrialState.FAIL} == set(status) - ok
