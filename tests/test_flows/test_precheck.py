"""flows.precheck: a wrong metric, model family or task is refused from the registries' names, a
wrong column or an unreadable table from the column names alone, in the flow's words, before
Prefect is imported or its temporary API started."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from support import dataset_path

from flows.precheck import DEFAULT_METRICS, TASKS, check_columns, check_names, metrics_of
from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.storage import read_table
from tasks.errors import ConfigError, DataError
from tasks.metrics import METRICS, default_metric, get_metric
from tasks.models.families import FAMILIES, resolve_families

AUTOML = [sys.executable, "-m", "flows.cli"]
ADULT = ("age, workclass, fnlwgt, education, education-num, marital-status, occupation, "
         "relationship, race, sex, capital-gain, capital-loss, hours-per-week, native-country, "
         "class")


def refuse(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """The command run as a newcomer runs it (no Prefect server configured, a fresh
    PREFECT_HOME); also whether a Prefect API server process was seen among its children."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    command = subprocess.Popen([*AUTOML, "train", *args], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parent, api_seen = psutil.Process(command.pid), False
    deadline = time.monotonic() + 300
    while command.poll() is None and time.monotonic() < deadline:
        try:
            children = parent.children(recursive=True)
            api_seen |= any("flows.api" in (c.cmdline() or []) for c in children)
        except psutil.Error:  # the command or a child went meanwhile
            pass
        time.sleep(0.02)
    out, err = command.communicate(timeout=60)
    done = subprocess.CompletedProcess(command.args, command.returncode, out, err)
    return done, api_seen


def assert_refused_before_prefect(tmp_path, done, api_seen, sentence: str) -> None:
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == f"error: {sentence}"
    assert not api_seen, "Prefect's temporary API server was started"
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()


def test_a_wrong_target_in_parquet_is_refused_before_prefect(tmp_path):
    data = str(dataset_path("adult"))
    done, api_seen = refuse(tmp_path, "--data", data, "--target", "typo")
    assert_refused_before_prefect(
        tmp_path, done, api_seen, f"target column 'typo' is not in '{data}'; columns are: {ADULT}")


def test_a_wrong_target_in_csv_is_refused_before_prefect(tmp_path):
    # A byte-order mark and semicolons: the header is read by the project's own CSV reading.
    (tmp_path / "homes.csv").write_text("id;price;rooms\n1;250.000,5;3\n2;99,5;1\n",
                                        encoding="utf-8-sig")
    done, api_seen = refuse(tmp_path, "--data", "homes.csv", "--target", "prices")
    assert_refused_before_prefect(
        tmp_path, done, api_seen,
        "target column 'prices' is not in 'homes.csv'; columns are: id, price, rooms")


def test_a_missing_file_is_refused_before_prefect_in_the_flows_words(tmp_path):
    done, api_seen = refuse(tmp_path, "--data", "missing.csv", "--target", "y")
    assert_refused_before_prefect(
        tmp_path, done, api_seen,
        "training data 'missing.csv' was not found; check the path or URL")


def _table(tmp_path, name: str, frame: pd.DataFrame) -> str:
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("knobs", "start"),
    [
        ({"target": "typo"}, "target column 'typo' is not in"),
        ({"weight_column": "weights"}, "weight_column 'weights' is not in"),
        ({"validation_data": "valid.csv"}, "target column 'y' is not in"),
        ({"test_data": "test.parquet"}, "target column 'y' is not in"),
    ],
)
def test_the_early_check_says_what_the_flow_says(tmp_path, knobs, start):
    """One function refuses in both places: the header's sentence is the whole table's."""
    frame = pd.DataFrame({"a": range(40), "w": 1.0, "y": [0, 1] * 20})
    values = {"training_data": _table(tmp_path, "train.csv", frame), "target": "y", **knobs}
    others = {}
    for knob in ("validation_data", "test_data"):
        if knob in knobs:
            values[knob] = _table(tmp_path, knobs[knob], frame.drop(columns="y"))
            others[knob.split("_")[0]] = read_table(values[knob])
    config = parse_config(**values)
    with pytest.raises(DataError) as early:
        check_columns(config)
    with pytest.raises(DataError) as late:
        inspect_data(config, read_table(config.training_data), **others)
    assert str(early.value).startswith(start)
    assert str(early.value) == str(late.value)


def test_what_the_names_cannot_tell_is_left_to_the_flow(tmp_path):
    # JSON Lines has no cheap header; a Secret block's credentials are on the Prefect API.
    (tmp_path / "t.jsonl").write_text('{"a": 1, "y": 0}\n')
    check_columns(parse_config(training_data=str(tmp_path / "t.jsonl"), target="typo"))
    check_columns(parse_config(training_data=str(tmp_path / "none.csv"), target="typo",
                               storage_secret="block"))
    # A file whose header cannot be read is the flow's whole read to tell, not a second one here.
    (tmp_path / "empty.csv").write_text("")
    check_columns(parse_config(training_data=str(tmp_path / "empty.csv"), target="typo"))


def _names(task: str) -> str:
    return ", ".join(f.name for f in FAMILIES.values() if task in f.estimators)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--metric", "AUC"],
         "primary_metric 'AUC' is an unknown metric; valid classification metrics are: "
         f"{', '.join(sorted(metrics_of('classification')))}; valid regression metrics are: "
         f"{', '.join(sorted(metrics_of('regression')))}"),
        (["--task", "regression", "--metric", "accuracy"],
         "primary_metric 'accuracy' is a metric for classification, not regression: use one of: "
         f"{', '.join(sorted(metrics_of('regression')))}"),
        (["--allowed-models", "LightGBM,DeepForest"],
         "allowed_models names 'DeepForest', which is not a model family; classification models "
         f"are: {_names('classification')}; regression models are: {_names('regression')}"),
        (["--blocked-models", "Foo"],
         "blocked_models names 'Foo', which is not a model family; classification models "
         f"are: {_names('classification')}; regression models are: {_names('regression')}"),
        (["--task", "classification", "--allowed-models", "ElasticNet"],
         "allowed_models names 'ElasticNet', which is not a classification model; valid names "
         f"are: {_names('classification')}"),
        (["--task", "clasification"],
         "automl train: argument --task: invalid choice: 'clasification' (choose from "
         "'classification', 'regression'); see automl train --help"),
    ],
    ids=["metric", "metric-of-the-other-task", "allowed-family", "blocked-family",
         "family-of-the-other-task", "task"],
)
@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_a_wrong_name_is_refused_before_prefect(tmp_path, args, sentence):
    """Through the flow these took 9-15 s (Prefect's temporary API, the data read)."""
    started = time.monotonic()
    done, api_seen = refuse(tmp_path, "--data", str(dataset_path("credit_g")), "--target",
                            "class", *args)
    seconds = time.monotonic() - started
    assert_refused_before_prefect(tmp_path, done, api_seen, sentence)
    assert not (tmp_path / "prefect-home").exists()
    assert not (tmp_path / "automl-runs").exists()
    assert seconds < 5, f"{seconds:.1f} s"  # about 0.4 s on an idle machine


def test_a_plugins_family_passes_the_names_check(tmp_path, monkeypatch):
    """AUTOML_PLUGINS' families are names too: the plugin is imported to find one, and the run
    goes on (here to the column check, which refuses the target, still before Prefect)."""
    monkeypatch.setenv("AUTOML_PLUGINS", "misbehaving")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    data = str(dataset_path("adult"))
    done, api_seen = refuse(tmp_path, "--data", data, "--target", "typo",
                            "--allowed-models", "Raising")
    assert_refused_before_prefect(
        tmp_path, done, api_seen, f"target column 'typo' is not in '{data}'; columns are: {ADULT}")


def test_the_early_names_are_the_registries_and_their_sentences_the_flows():
    for task in TASKS:
        assert metrics_of(task) == [n for n, m in METRICS.items() if m.task == task]
        assert DEFAULT_METRICS[task] == default_metric(task)
    for metric, task in (("AUC", "classification"), ("accuracy", "regression"),
                         ("r2_score", "classification"), ("nope", "regression")):
        with pytest.raises(ConfigError) as late:
            get_metric(metric, task)
        with pytest.raises(ConfigError) as early:
            check_names(parse_config(training_data="t.csv", target="y", task=task,
                                     primary_metric=metric))
        assert str(early.value) == str(late.value)
    with pytest.raises(ConfigError) as late:
        resolve_families("regression", ["LightGBM"], ["lightgbm"])
    with pytest.raises(ConfigError) as early:
        check_names(parse_config(training_data="t.csv", target="y", task="regression",
                                 allowed_models=["LightGBM"], blocked_models=["lightgbm"]))
    assert str(early.value) == str(late.value)
    # Any case and Azure's aliases, as the flow takes them; the other task's names are the
    # flow's to judge once it knows the task.
    check_names(parse_config(training_data="t.csv", target="y", primary_metric="r2_SCORE",
                             allowed_models=["xgboostclassifier", "ElasticNet"]))
