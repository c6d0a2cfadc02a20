"""The command line as a user and a calling pipeline see it: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from support import AUTOML, dataset_path, load, run_cli

pytestmark = pytest.mark.slow

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


def test_the_first_trials_start_before_the_flow_asks_for_them(trained):
    """The command's head start (tasks.search.head_start): the portfolio's first trial ran in
    its worker before the flow's search asked Optuna for it, and was recorded once."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    cwd, out = trained
    storage = JournalStorage(JournalFileBackend(str(cwd / "automl-runs" / "optuna.journal")))
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert len(trials) == out["trials"] == 5
    first = trials[0]
    assert first.user_attrs["started_at"] < first.datetime_start.timestamp(), (
        first.user_attrs["started_at"], first.datetime_start)
    configurations = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(configurations)) == len(configurations)


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
        (["--target", "class", "--max-predict-ms-per-row", "0"],
         "error: max_predict_ms_per_row=0.0 is invalid: Input should be greater than 0"),
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


def test_a_valid_run_without_a_model_exits_3_with_its_reason(api_url, tmp_path):
    """Every trial of the only allowed family fails: the input was fine, the run found no
    model. A pipeline tells that apart from its own mistake (2) by the code."""
    here = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": api_url,
           "AUTOML_PLUGINS": "misbehaving",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [*AUTOML, "train", "--data", str(dataset_path("blood_transfusion")), "--target",
         "donated_march_2007", "--allowed-models", "Raising", "--iterations", "2"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("no model: all 2 trials failed, so no model was registered; first error: "
                    "ValueError: this family always fails")
    assert "Traceback" not in done.stderr
    from mlflow.tracking import MlflowClient

    store = f"sqlite:///{tmp_path / 'automl-runs' / 'mlflow.db'}"
    assert MlflowClient(store, registry_uri=store).search_registered_models() == []


def test_an_internal_error_is_one_line_exit_1_and_a_traceback_file(api_url, tmp_path):
    """A bug of ours (here injected: the task inference raises) is not the user's mistake."""
    script = ("import sys, tasks.data.inspect as inspect\n"
              "def broken(y):\n"
              "    raise ZeroDivisionError('injected fault')\n"
              "inspect.infer_task = broken\n"
              "from flows.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_API_URL": api_url}
    done = subprocess.run(
        [sys.executable, "-c", script, "train", "--data", str(dataset_path("blood_transfusion")),
         "--target", "donated_march_2007"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    head, _, path = lines[0].partition("; the full traceback is in ")
    assert head == "internal error: ZeroDivisionError: injected fault"
    log = Path(path)
    assert log.parent == tmp_path / "automl-runs" / "logs"
    assert "Traceback" in log.read_text() and "ZeroDivisionError: injected fault" in log.read_text()


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_refusals_under_cpu_load_exit_2_every_time(tmp_path):
    """Two processes spin on the two cores while the command is refused again and again: every
    refusal is its one sentence and exit code 2, never a signal from the way out
    (benchmarks/refusals.py runs 50)."""
    from benchmarks.refusals import MISTAKES, SPIN, refuse

    table = tmp_path / "t.csv"
    table.write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
    try:
        outcomes = [refuse(tmp_path, table, MISTAKES[i % len(MISTAKES)]) for i in range(18)]
    finally:
        for process in busy:
            process.kill()
    for code, _, err in outcomes:
        assert code == 2 and err.startswith("error: "), err[-500:]
        assert len(err.strip().splitlines()) == 1, err[-500:]


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_a_30_second_budget_holds_for_the_whole_command(tmp_path):
    """From the command's start to its exit, Prefect's temporary API and MLflow included, as a
    newcomer runs it after `make install` (no server configured): at most 1.1 times the
    budget."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_HOME=str(tmp_path / "prefect"))
    # Prefect's database created, as `make install` leaves it (its first start migrates it).
    subprocess.run([sys.executable, "-c", "from flows.api import prepare; prepare()"],
                   cwd=tmp_path, env=env, check=True, timeout=300)
    started = time.monotonic()
    done = subprocess.run(
        [*AUTOML, "train", "--data", str(dataset_path("telco_churn")), "--target", "churn",
         "--timeout-minutes", "0.5", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["trials"] >= 1
    assert wall <= 33.0, f"{wall:.1f} s for a 30 s budget"
