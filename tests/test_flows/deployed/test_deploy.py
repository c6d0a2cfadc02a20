"""prefect.yaml on a real stack: a Prefect server on a free loopback port with a temporary home,
the process work pool, `prefect deploy --all`, a worker; runs triggered the way the UI and the
CLI trigger them, checked in Prefect and in MLflow. The same code as `make deploy` starts it."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from deployed_stack import (
    TARGET,
    artifacts,
    call,
    deployment,
    run_logs,
    train_config,
    trigger,
    wait,
)
from mlflow.tracking import MlflowClient
from support import load

from flows.deploy import BIN

pytestmark = pytest.mark.slow

def test_the_form_is_the_typed_config_with_its_descriptions(api):
    schema = deployment(api, "automl-train/train")["parameter_openapi_schema"]
    knobs = schema["definitions"]["AutoMLConfig"]["properties"]
    assert knobs["iterations"] == {"default": 1000, "description": "Maximum number of trials.",
                                   "minimum": 1, "title": "Iterations", "type": "integer"}
    assert {"primary_metric", "allowed_models", "experiment_timeout_minutes"} <= set(knobs)
    nightly = deployment(api, "automl-retrain/nightly")
    assert nightly["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    env = nightly["job_variables"]["env"]
    assert env["OMP_NUM_THREADS"] == "1" and env["MLFLOW_TRACKING_URI"].startswith("sqlite:///")


def test_the_form_is_the_config_alone_with_the_names_as_choices(api, stack):
    schema = deployment(api, "automl-train/train")["parameter_openapi_schema"]
    assert set(schema["properties"]) == {"config"}  # not started_at, shutdown_seconds, warm_start
    knobs = schema["definitions"]["AutoMLConfig"]["properties"]
    metric = knobs["primary_metric"]["anyOf"][0]
    assert {"AUC_weighted", "accuracy", "r2_score"} <= set(metric["enum"])
    for field in ("allowed_models", "blocked_models"):
        names = knobs[field]["anyOf"][0]["items"]["enum"]
        assert {"LightGBM", "LogisticRegression", "XGBoost"} <= set(names)
    refused = trigger(api, "automl-train/train",
                      {"config": train_config(stack, allowed_models=["DeepForest"])})
    assert refused.status_code == 409 and "'DeepForest' is not one of" in refused.json()["detail"]


def test_the_nightly_schedule_ships_paused(api):
    [schedule] = deployment(api, "automl-retrain/nightly")["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *" and schedule["active"] is False


def test_a_wrong_type_is_refused_at_trigger_time(api, stack):
    refused = trigger(api, "automl-train/train", {"config": train_config(stack, iterations="many")})
    assert refused.status_code == 409
    assert "'many' is not of type 'integer'" in refused.json()["detail"]
    cli = subprocess.run(
        [str(BIN / "prefect"), "deployment", "run", "automl-train/train",
         "-p", "config=" + json.dumps(train_config(stack, iterations="many"))],
        env=stack.env(), capture_output=True, text=True, timeout=120,
    )
    assert cli.returncode != 0
    assert "Validation failed for field 'config.iterations'" in cli.stdout + cli.stderr
    runs = call(api, "post", "/flow_runs/filter", json={}).json()
    assert not any(r["parameters"].get("config", {}).get("iterations") == "many" for r in runs)


def test_training_runs_completes_registers_and_shows_its_progress(api, trained, stack):
    run, _ = trained
    assert run["name"] == "blood on blood_transfusion.parquet"
    assert {"automl", "train", "blood", "classification"} <= set(run["tags"])
    client = MlflowClient(stack.tracking_uri)
    experiment = client.get_experiment_by_name("blood")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 1 + 3
    versions = client.search_model_versions("name = 'blood-model'")
    assert [str(v.version) for v in versions] == ["1"] and versions[0].run_id == parents[0].info.run_id
    assert Path(parents[0].info.artifact_uri.removeprefix("file://")).is_relative_to(stack.runs)
    shown = artifacts(api, run["id"])
    assert shown["blood-progress"]["data"] == 100.0
    board = json.loads(shown["blood-leaderboard"]["data"])
    assert board[0]["rank"] == "final" and len(board) == 1 + 3  # the model, then every trial
    assert json.loads(shown["blood-guardrails"]["data"])  # the data checks, one row each
    assert "models:/blood-model/1" in shown["blood-summary"]["data"]


def test_the_run_logs_its_trials_once_each(stack, trained):
    run, _ = trained
    logs = [log for log in run_logs(stack, run["id"]) if log.name == "automl"]
    trials = [log.message for log in logs if log.message.startswith("trial ")]
    assert any("AUC_weighted=" in line for line in trials), [log.message for log in logs]
    assert len(trials) == len(set(trials)) <= 3  # once each, not twice through two handlers
    assert {log.level for log in logs if log.message in trials} == {logging.INFO}
    assert any(log.message.startswith("time: ") for log in logs)
    # What the command prints after the search, the leaderboard and the registry's decision.
    [board] = [log.message for log in logs if log.message.startswith("leaderboard (AUC_weighted")]
    assert "registered as models:/blood-model/1" in board and len(board.splitlines()) == 1 + 1 + 3
    assert any(log.message.startswith("registry: blood-model version 1 holds @champion: ")
               for log in logs)


def test_a_mistake_is_logged_once_without_a_traceback(stack, trained):
    _, run = trained
    logs = run_logs(stack, run["id"])
    told = [log.message for log in logs if "target column 'price' is not in" in log.message]
    assert len(told) == 1, told
    assert not [log.message for log in logs if "Traceback" in log.message]


def test_bad_input_fails_the_run_with_one_sentence_and_no_retry(trained):
    _, run = trained
    message = run["state"]["message"]
    assert message.startswith("target column 'price' is not in")
    assert "Traceback" not in message and "\n" not in message
    assert run["run_count"] == 1


def test_batch_scoring_uses_the_registered_model(api, stack, trained, tmp_path):
    rows = load("blood_transfusion").drop(columns=[TARGET]).head(40)
    rows.to_parquet(tmp_path / "new.parquet")
    rows.drop(columns=["recency_months"]).to_csv(tmp_path / "short.csv", index=False)
    out = tmp_path / "scored.csv"
    good = trigger(api, "automl-score/batch", {
        "model": "blood-model", "data": str(tmp_path / "new.parquet"), "output": str(out)})
    bad = trigger(api, "automl-score/batch", {
        "model": "blood-model", "data": str(tmp_path / "short.csv"), "output": str(tmp_path / "x.csv")})
    run = wait(api, stack, good.json()["id"], "COMPLETED")
    failed = wait(api, stack, bad.json()["id"], "FAILED")

    scored = pd.read_csv(out)
    assert len(scored) == 40 and {"prediction", "proba_0", "proba_1"} <= set(scored.columns)
    assert ((scored["proba_0"] + scored["proba_1"] - 1).abs() < 1e-6).all()
    assert run["name"] == "score blood-model on new.parquet"
    (summary,) = [a["data"] for a in artifacts(api, run["id"]).values() if a["type"] == "markdown"]
    assert "**40** rows" in summary and "models:/blood-model/1" in summary
    assert failed["state"]["message"].startswith(
        "the data lacks column(s) the model needs: recency_months")
    assert not (tmp_path / "x.csv").exists()
