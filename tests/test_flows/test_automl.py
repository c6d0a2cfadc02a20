"""The whole flow end to end on real data, under a Prefect test API, with a real MLflow store."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from support import dataset_path, load
from mlflow.tracking import MlflowClient

from flows.automl import automl_flow
from tasks.config import parse_config
from tasks.errors import DataError
from tasks.final.thresholds import MIN_GAIN
from tasks.registry.scoring import load_model

pytestmark = pytest.mark.slow


def train(workdir, name, target, **knobs):
    config = parse_config(
        training_data=str(dataset_path(name)), target=target, workdir=str(workdir),
        experiment_name=name, **knobs,
    )
    return config, automl_flow(config)


@pytest.fixture(scope="module")
def credit(credit_run):
    """The session's credit_g run (tests/conftest.py): 8 trials, seed 7, cross-validated."""
    config, result = credit_run
    return config.workdir_path, config, result


def client_of(config):
    uri = config.resolved_tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_every_trial_is_a_child_run(credit):
    _, config, result = credit
    client = client_of(config)
    children = client.search_runs(
        [client.get_experiment_by_name(config.experiment_name).experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
    )
    assert len(children) == result.trials == 8
    assert all("fit_seconds" in c.data.metrics and "fold_score" in c.data.metrics for c in children)
    # A trial that ran every fold has every metric; a pruned one only its folds' scores.
    status = {c.data.tags["status"] for c in children}
    assert status <= {"ok", "pruned"} and "ok" in status
    for child in children:
        full = child.data.tags["status"] == "ok"
        assert ("AUC_weighted" in child.data.metrics) == full
        history = client.get_metric_history(child.info.run_id, "fold_score")
        assert (len(history) == 5) == full and [m.step for m in history] == list(range(len(history)))
    assert result.pruned_trials == sum(c.data.tags["status"] == "pruned" for c in children)
    assert {c.data.params["family"] for c in children} >= {"lightgbm", "xgboost"}
    parent = client.get_run(result.run_id)
    assert parent.data.params["iterations"] == "8"
    assert parent.info.status == "FINISHED"


def test_registered_version_loads_and_agrees_with_the_pickle(credit):
    _, config, result = credit
    registered = load_model(
        f"models:/{result.registered_model_name}/{result.model_version}", config.resolved_tracking_uri
    )
    with open(result.pkl_uri, "rb") as handle:
        pickled = pickle.load(handle)
    rows = load("credit_g").drop(columns=["class"]).sample(50, random_state=1)
    assert np.allclose(registered.predict_proba(rows), pickled.predict_proba(rows))
    assert set(pickled.predict(rows)) <= {"good", "bad"}


def test_pickle_predicts_raw_rows_in_a_fresh_process(credit, tmp_path):
    _, _, result = credit
    rows = load("credit_g").drop(columns=["class"]).head(20).copy()
    rows.loc[0, "purpose"] = "space travel"  # a category never seen in training
    rows.loc[1, "credit_amount"] = np.nan  # a missing value where training had none
    rows.loc[2, "checking_status"] = None
    rows.to_parquet(tmp_path / "rows.parquet")
    script = (
        "import pickle, sys, pandas as pd\n"
        f"model = pickle.load(open({result.pkl_uri!r}, 'rb'))\n"
        f"rows = pd.read_parquet({str(tmp_path / 'rows.parquet')!r})\n"
        "print(','.join(map(str, model.predict(rows))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    labels = done.stdout.strip().split(",")
    assert len(labels) == 20 and set(labels) <= {"good", "bad"}


def test_the_model_beats_nothing_less_than_its_own_portfolio(credit):
    _, _, result = credit
    # The first trials are each family's defaults; the chosen model is at least as good as all.
    board = [r for r in result.leaderboard if r["status"] == "ok"]
    assert result.primary_metric_value >= max(r["AUC_weighted"] for r in board) - 1e-12
    assert result.trials == 8 and "iteration limit" in result.stop_reason


def test_regression_with_holdout_and_test_set(prefect_api, tmp_path):
    config, result = train(
        tmp_path, "concrete", "compressive_strength", iterations=6, validation_size=0.2,
        test_size=0.2, allowed_models=["LightGBM", "ElasticNet", "RandomForest"],
    )
    assert result.task == "regression"
    assert result.primary_metric == "normalized_root_mean_squared_error"
    assert result.validation == "20% holdout"
    assert 0 < result.test_metrics["normalized_root_mean_squared_error"] < 0.5
    assert {row["model"].split("-")[0] for row in result.leaderboard} <= {"LightGBM", "ElasticNet", "RandomForest"}
    model = pickle.load(open(result.pkl_uri, "rb"))
    predictions = model.predict(load("concrete").drop(columns=["compressive_strength"]).head(10))
    assert predictions.dtype.kind == "f" and np.all(np.isfinite(predictions))


def test_balanced_accuracy_on_rare_positives_gets_a_decision_threshold(prefect_api, tmp_path):
    # kc1: 15% of the rows have defects; the most likely class misses most of them.
    config, result = train(tmp_path, "kc1", "defects", iterations=4,
                           primary_metric="balanced_accuracy", random_state=0)
    threshold = client_of(config).get_run(result.run_id).data.metrics["decision_threshold"]
    assert 0 < threshold < 0.5
    assert result.to_dict()["decision_threshold"] == pytest.approx(threshold)  # what --json prints
    assert result.positive_class == "True"  # kc1's defects: the class whose probability it reads
    # The validation metric is read at the threshold: above every trial's at the most likely
    # class, by the minimum gain at least (an ensemble only adds to it).
    board = [r["balanced_accuracy"] for r in result.leaderboard if r["status"] == "ok"]
    assert result.primary_metric_value >= max(board) + MIN_GAIN
    with open(result.pkl_uri, "rb") as handle:
        pickled = pickle.load(handle)
    registered = load_model(f"models:/{result.registered_model_name}/{result.model_version}",
                            config.resolved_tracking_uri)
    rows = load("kc1").drop(columns=["defects"])
    proba, labels = pickled.predict_proba(rows), pickled.predict(rows)
    positive = proba[:, list(pickled.classes_).index("True")]
    assert np.array_equal(labels == "True", positive >= threshold)
    assert ((positive >= threshold) & (positive < 0.5)).any()  # labels argmax would not give
    assert np.array_equal(registered.predict(rows), labels)


def test_exit_score_stops_the_search(prefect_api, tmp_path):
    _, result = train(tmp_path, "blood_transfusion", "donated_march_2007", iterations=30,
                      experiment_exit_score=0.5)
    assert result.trials < 30
    assert result.stop_reason.startswith("exit score 0.5 reached")


def test_bad_input_registers_nothing(prefect_api, tmp_path):
    config = parse_config(training_data=str(dataset_path("credit_g")), target="no_such_column",
                          workdir=str(tmp_path), experiment_name="bad")
    with pytest.raises(DataError, match="target column 'no_such_column' is not in"):
        automl_flow(config)
    client = client_of(config)
    assert client.search_registered_models() == []
    assert client.get_experiment_by_name("bad") is None


def test_guardrail_report_is_returned_and_logged(credit):
    _, config, result = credit
    names = [c["name"] for c in result.guardrails]
    assert "Validation split handling" in names and "Target leakage hint" in names
    client = client_of(config)
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"guardrails.json", "guardrails.txt", "leaderboard.json", "model.pkl", "model"} <= artifacts
    local = client.download_artifacts(result.run_id, "guardrails.json")
    logged = json.load(open(local))["checks"]
    assert logged == result.guardrails


def support_tickets(n: int = 600, seed: int = 5) -> pd.DataFrame:
    """A messy table built here: date strings, free text, an id column, missing values."""
    rng = np.random.default_rng(seed)
    opened = pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    words = ["printer", "login", "invoice", "refund", "crash", "slow", "password", "screen",
             "network", "urgent", "billing", "update", "error", "email", "account"]
    text = [" ".join(rng.choice(words, size=rng.integers(4, 12))) for _ in range(n)]
    late = (
        (opened.hour >= 18).astype(int)
        + np.array(["urgent" in t or "crash" in t for t in text]).astype(int)
        + rng.integers(0, 2, n)
    ) >= 2
    frame = pd.DataFrame({
        "ticket_id": [f"T-{100000 + i}" for i in range(n)],
        "opened_at": opened.strftime("%Y-%m-%d %H:%M"),
        "description": text,
        "channel": rng.choice(["email", "phone", "chat", None], n),
        "queue_length": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 40, n)),
        "late": np.where(late, "yes", "no"),
    })
    return frame


def test_messy_table_with_dates_and_text(prefect_api, tmp_path):
    path = tmp_path / "tickets.csv"
    support_tickets().to_csv(path, index=False)
    config = parse_config(training_data=str(path), target="late", iterations=4,
                          workdir=str(tmp_path), experiment_name="tickets")
    result = automl_flow(config)
    assert result.roles["datetime"] == ["opened_at"] and result.roles["text"] == ["description"]
    assert any(d.startswith("ticket_id") for d in result.roles["dropped"])
    checks = {c["name"]: c for c in result.guardrails}
    assert "channel" in checks["Missing feature values imputation"]["detail"]
    assert result.metrics["AUC_weighted"] > 0.7  # the hour and the words carry the signal
    fresh = support_tickets(n=30, seed=9).drop(columns=["late"])
    fresh.loc[0, "opened_at"] = None
    fresh.loc[1, "description"] = "completely unseen vocabulary here"
    fresh.to_csv(tmp_path / "fresh.csv", index=False)
    script = (
        "import pickle, pandas as pd\n"
        f"model = pickle.load(open({result.pkl_uri!r}, 'rb'))\n"
        f"print(len(model.predict(pd.read_csv({str(tmp_path / 'fresh.csv')!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "30"
