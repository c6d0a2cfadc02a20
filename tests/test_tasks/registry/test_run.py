"""tasks.registry.run: a training run's MLflow parent run and Optuna study, opened together,
resumed together, closed as the run ended; against a real SQLite store and journal file."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from support import dataset_path, load

from tasks.config import parse_config
from tasks.data.guardrails import build_report
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import ConfigError
from tasks.registry.run import RunSpec, close_run, open_run
from tasks.search.study import find_unfinished


@pytest.fixture(scope="module")
def prepared():
    frame = load("credit_g")
    config = parse_config(training_data=str(dataset_path("credit_g")), target="class")
    profile = inspect_data(config, frame)
    data, test = split_data(SplitPlan.of(config), profile, frame)
    return frame, profile, data, build_report(profile, data, test)


def spec(tmp_path, **knobs):
    config = parse_config(
        training_data="s3://AKIA:pa55word@bucket/credit.parquet?sig=abc", target="class",
        workdir=str(tmp_path), experiment_name="runs", storage_options={"secret": "s3cr3t"},
        **knobs)
    return RunSpec.of(config)


def test_the_logged_configuration_holds_no_credentials(tmp_path):
    params = spec(tmp_path).params
    assert params["training_data"] == "s3://bucket/credit.parquet"
    assert "storage_options" not in params and "resume" not in params
    assert "s3cr3t" not in str(params) and "pa55word" not in str(params)


def test_a_new_run_has_its_parent_run_and_its_study(tmp_path, prepared):
    frame, profile, data, report = prepared
    run = open_run(spec(tmp_path), profile, data, report, frame)
    client = MlflowClient(run.tracker.tracking_uri)
    parent = client.get_run(run.run_id)
    assert parent.info.status == "RUNNING"
    assert parent.data.params["primary_metric"] == "AUC_weighted"
    assert parent.data.params["n_rows"] == str(len(data.X))
    assert parent.data.tags["automl.data_digest"] == run.parent.table_digest
    assert run.study_name.startswith("runs-")
    assert parent.data.tags["automl.optuna_study"] == run.study_name
    assert run.study().user_attrs["split_digest"] == data.split_digest()
    assert find_unfinished(run.storage, "runs") == run.study_name
    close_run(run, ok=False)
    assert client.get_run(run.run_id).info.status == "FAILED"


def test_resume_reopens_the_same_run_and_refuses_other_data(tmp_path, prepared):
    frame, profile, data, report = prepared
    first = open_run(spec(tmp_path), profile, data, report, frame)
    close_run(first, ok=False)  # interrupted: never registered
    again = open_run(spec(tmp_path, resume=True), profile, data, report, frame)
    assert (again.run_id, again.study_name) == (first.run_id, first.study_name)
    client = MlflowClient(again.tracker.tracking_uri)
    assert client.get_run(again.run_id).info.status == "RUNNING"
    other, _ = split_data(SplitPlan(target="class", seed=1, n_cross_validations=3), profile, frame)
    with pytest.raises(ConfigError, match="this run's data or split differ from it"):
        open_run(spec(tmp_path, resume=True), profile, other, report, frame)


def test_a_run_whose_study_cannot_open_ends_failed(tmp_path, prepared, monkeypatch):
    frame, profile, data, report = prepared

    def broken(**_: object) -> None:
        raise OSError("the journal's disk is full")

    monkeypatch.setattr("tasks.registry.run.open_study", broken)
    with pytest.raises(OSError, match="disk is full"):
        open_run(spec(tmp_path), profile, data, report, frame)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]  # no parent run left RUNNING
