"""What a training run hands back (flows.result): TrainResult built by a real small run, checked
against itself, MLflow and the flow's steps."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from support import dataset_path

from flows import steps
from flows.automl import automl_flow
from tasks.config import parse_config

# Every step of the training flow, in the order it runs.
STEPS = ["ingest", "inspect", "split", "guardrails", "track", "search", "ensemble", "refit",
         "evaluate", "register", "report", "describe"]


@pytest.fixture(scope="module")
def trained(prefect_api, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("result")
    config = parse_config(training_data=str(dataset_path("credit_g")), target="class",
                          iterations=5, max_concurrent_iterations=2, workdir=str(workdir),
                          experiment_name="result", test_size=0.2)
    return config, automl_flow(config)


def test_to_dict_is_json_and_round_trips_the_fields(trained):
    _, result = trained
    text = json.dumps(result.to_dict(), default=str)
    back = json.loads(text)
    assert back["run_id"] == result.run_id and back["trials"] == result.trials == 5
    assert back["leaderboard"] == json.loads(json.dumps(result.leaderboard, default=str))
    assert back["model_uri"] == f"models:/result/{result.model_version}"


def test_the_leaderboard_ranks_ok_trials_best_first(trained):
    _, result = trained
    board = result.leaderboard
    assert 0 < len(board) <= 10 and len(board) == min(result.trials, 10)
    assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
    statuses = [row["status"] for row in board]
    ok = [row["AUC_weighted"] for row in board if row["status"] == "ok"]
    assert ok and ok == sorted(ok, reverse=True)
    assert statuses[: len(ok)] == ["ok"] * len(ok)  # the others come after
    assert result.failed_trials == statuses.count("failed")
    assert result.pruned_trials == statuses.count("pruned")
    assert result.trials == len(board)


def test_phase_seconds_cover_every_step_that_ran(trained):
    _, result = trained
    assert set(STEPS) <= set(steps.__all__)  # the steps as the module names them
    assert list(result.phase_seconds) == STEPS
    assert all(seconds >= 0 for seconds in result.phase_seconds.values())
    assert result.phase_seconds["search"] > 0
    # The tracking step runs beside the search; the others one after another.
    assert sum(v for k, v in result.phase_seconds.items() if k != "track") <= result.wall_seconds


def test_the_result_agrees_with_what_mlflow_recorded(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    parent = client.get_run(result.run_id).data
    assert parent.metrics["trials"] == result.trials
    assert parent.tags["best_model"] == result.best_model
    assert parent.tags["stop_reason"] == result.stop_reason
    assert parent.metrics["best_AUC_weighted"] == pytest.approx(result.primary_metric_value)
    assert parent.metrics["test_AUC_weighted"] == pytest.approx(result.test_metrics["AUC_weighted"])
    assert result.primary_metric == "AUC_weighted" and result.task == "classification"
    assert result.primary_metric_value == result.metrics["AUC_weighted"]
    version = client.get_model_version("result", result.model_version)
    assert version.run_id == result.run_id
    assert result.promoted and result.aliases == ["champion"]
    assert result.registry["reason"] == "no champion yet"
    best = client.search_runs(
        [client.get_experiment_by_name("result").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
        order_by=["metrics.AUC_weighted DESC"], max_results=1)[0]
    assert result.leaderboard[0]["model"] == best.info.run_name
    # The best trial's parameters, with what its refit changed (the rounds early stopping kept).
    logged = best.data.params
    assert result.best_params["family"] == logged["family"]
    for name, value in result.best_params.items():
        assert str(value) == logged.get(f"refit_{name}", logged[name]), name
