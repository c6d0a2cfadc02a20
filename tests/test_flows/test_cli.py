"""The command line as a user and a calling pipeline see it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import dataset_path, load

pytestmark = pytest.mark.slow

AUTOML = [sys.executable, "-m", "flows.cli"]


def run_cli(*args: str, cwd: Path, api_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([*AUTOML, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def api_url(prefect_api) -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


@pytest.fixture(scope="module")
def trained(api_url, tmp_path_factory):
    """`automl train --json` on a shared dataset, the way another pipeline would call it."""
    cwd = tmp_path_factory.mktemp("cli")
    done = run_cli(
        "train", "--data", str(dataset_path("blood_transfusion")), "--target", "donated_march_2007",
        "--iterations", "5", "--experiment", "blood", "--model-name", "blood-model", "--json",
        cwd=cwd, api_url=api_url,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cwd, json.loads(done.stdout)


def test_json_output_has_what_a_pipeline_chains_on(trained):
    cwd, out = trained
    assert out["registered_model_name"] == "blood-model"
    assert out["model_uri"] == f"models:/blood-model/{out['model_version']}"
    assert Path(out["pkl_uri"]).is_file()
    assert Path(out["pkl_uri"]).is_relative_to(cwd / "automl-runs")
    assert out["trials"] == 5
    assert out["primary_metric"] == "AUC_weighted" and 0.5 < out["metrics"]["AUC_weighted"] <= 1
    assert {"accuracy", "log_loss", "balanced_accuracy"} <= set(out["metrics"])
    assert out["wall_seconds"] > 0 and out["run_id"]
    assert out["promoted"] is True and out["aliases"] == ["champion"]
    assert out["registry"]["reason"] == "no champion yet"
    assert out["registry"]["new_score"] == pytest.approx(out["metrics"]["AUC_weighted"])
    # AUC reads no labels: binary predictions keep the most likely class
    assert out["decision_threshold"] == 0.5 and out["temperature"] == 1.0
    assert out["positive_class"] in {str(v) for v in load("blood_transfusion")["donated_march_2007"]}


@pytest.mark.parametrize("model_ref", ["registry", "alias-less pkl"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_writes_predictions_and_probabilities(trained, model_ref, suffix):
    cwd, out = trained
    model = out["model_uri"] if model_ref == "registry" else out["pkl_uri"]
    rows = load("blood_transfusion").drop(columns=["donated_march_2007"]).head(25)
    rows.to_csv(cwd / "new.csv", index=False)
    target = cwd / f"scored{suffix}"
    done = run_cli("predict", "--model", model, "--data", "new.csv", "--output", str(target), cwd=cwd)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    labels = set(load("blood_transfusion")["donated_march_2007"].unique())
    assert len(scored) == 25 and set(scored["prediction"]) <= labels
    proba = scored[[f"proba_{label}" for label in sorted(labels)]]
    assert ((proba.sum(axis=1) - 1).abs() < 1e-6).all()


def test_predict_with_runs_uri(trained):
    cwd, out = trained
    done = run_cli("predict", "--model", f"runs:/{out['run_id']}/model", "--data",
                   str(dataset_path("blood_transfusion")), "--output", "all.parquet", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_parquet(cwd / "all.parquet")) == len(load("blood_transfusion"))


def test_bad_input_is_one_sentence_exit_2_and_nothing_registered(api_url, tmp_path):
    done = run_cli("train", "--data", str(dataset_path("credit_g")), "--target", "price",
                   cwd=tmp_path, api_url=api_url)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == [lines[0]] and "Traceback" not in done.stderr
    assert lines[0].startswith("error: target column 'price' is not in")
    assert "columns are: checking_status" in lines[0]
    assert not (tmp_path / "automl-runs" / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.csv", "--target", "y"], "error: training data 'missing.csv' was not found"),
        (["--data", "table.xlsx", "--target", "y"], "error: cannot tell the format of 'table.xlsx'"),
        (["--target", "class", "--metric", "AUC"], "error: primary_metric 'AUC' is an unknown metric"),
        (["--target", "class", "--cv", "1"], "error: n_cross_validations=1 is invalid"),
        (["--target", "class", "--allowed-models", "DeepForest"], "error: allowed_models names 'DeepForest'"),
        (["--target", "class", "--timeout-minutes", "0.0833"],
         "error: experiment_timeout_minutes=0.0833 is invalid: a budget of 5 s is too short to "
         "train and register even one default model; the smallest budget that works is 15 s"),
    ],
)
def test_more_bad_inputs(api_url, tmp_path, args, message):
    if "--data" not in args:
        args = ["--data", str(dataset_path("credit_g")), *args]
    done = run_cli("train", *args, cwd=tmp_path, api_url=api_url)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(message)


def test_predict_on_a_model_that_does_not_exist(tmp_path):
    done = run_cli("predict", "--model", "models:/nothing/1", "--data", "x.csv", "--output", "y.csv",
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: model 'models:/nothing/1' cannot be loaded")
