"""Distributed training (training_mode="distributed") on real parts: a Dask LocalCluster of two
worker processes reading partitioned Parquet from moto's S3 server on loopback, a real MLflow
store. Each worker must hold only its own partitions of the table: a worker plugin records which
partitions of the persisted training side reach each worker's memory."""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from sklearn.metrics import roc_auc_score
from support import load

from flows.automl import train
from tasks.config import AutoMLConfig
from tasks.distributed.data import LAYERS
from tasks.errors import DataError
from tasks.models.wrappers import inner_estimator

if TYPE_CHECKING:
    from collections.abc import Iterator

BUCKET = "automl-parts"
PARTS = 8
CREDENTIALS = {"key": "testing", "secret": "testing"}


class HeldPartitions(WorkerPlugin):
    """Records, on each worker, the partitions of the distributed run's sides that were in its
    memory at any time."""

    name = "held-partitions"

    def setup(self, worker: object) -> None:
        self.held: set[tuple[str, int]] = set()

    def transition(self, key: object, start: str, finish: str, **kwargs: object) -> None:
        if finish == "memory" and isinstance(key, tuple) and isinstance(key[0], str):
            for side, prefix in LAYERS.items():
                if key[0].startswith(prefix):
                    self.held.add((side, int(key[1])))


@pytest.fixture(scope="module")
def s3_parts() -> Iterator[dict]:
    """adult in PARTS part files under s3://automl-parts/adult/, on moto's server."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=CREDENTIALS["key"],
                          aws_secret_access_key=CREDENTIALS["secret"])
    client.create_bucket(Bucket=BUCKET)
    adult = load("adult")
    for i, rows in enumerate(np.array_split(np.arange(len(adult)), PARTS)):
        buffer = io.BytesIO()
        adult.iloc[rows].to_parquet(buffer, index=False)
        client.put_object(Bucket=BUCKET, Key=f"adult/part-{i:03d}.parquet",
                          Body=buffer.getvalue())
    yield {**CREDENTIALS, "client_kwargs": {"endpoint_url": endpoint}}
    server.stop()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as local:
        yield local


def _config(options: dict, cluster: LocalCluster, **values: object) -> AutoMLConfig:
    return AutoMLConfig(**{
        "training_data": f"s3://{BUCKET}/adult/", "target": "class",
        "training_mode": "distributed", "dask_address": cluster.scheduler_address,
        "storage_options": options, "experiment_timeout_minutes": 2, "iterations": 3,
        "test_size": 0.2, "experiment_name": "distributed", **values})


def test_two_workers_train_from_s3_parts_and_register_a_single_node_model(
        prefect_api, workdir, s3_parts, cluster):
    with Client(cluster) as client:
        client.register_plugin(HeldPartitions())
        result = train(_config(s3_parts, cluster))
        held = client.run(lambda dask_worker: sorted(dask_worker.plugins["held-partitions"].held))

    # Each worker held a share of the training side's partitions, none held them all, and
    # together they held each partition once.
    assert len(held) == 2
    train_parts = [{i for side, i in parts if side == "train"} for parts in held.values()]
    assert all(0 < len(parts) < PARTS for parts in train_parts)
    assert not train_parts[0] & train_parts[1]
    assert train_parts[0] | train_parts[1] == set(range(PARTS))

    assert result.trials == 3 and result.failed_trials == 0
    assert result.best_family in ("lightgbm", "xgboost")
    assert result.test_metrics is not None and result.test_metrics["AUC_weighted"] > 0.9
    # The registered model is an ordinary single-node pipeline: raw rows in, labels out, with
    # no cluster in sight.
    # (No mlflow.set_tracking_uri: it would steer this process's later tests.)
    registry = mlflow.MlflowClient(result.tracking_uri)
    version = registry.get_model_version(result.registered_model_name, result.model_version)
    assert version.run_id == result.run_id
    with open(result.pkl_uri, "rb") as handle:
        model = pickle.load(handle)  # noqa: S301 - the model this test just trained
    booster = inner_estimator(model.steps[-1][1], fitted=True)
    assert "dask" not in type(booster).__module__ and not type(booster).__name__.startswith("Dask")
    adult = load("adult")
    rows = adult.drop(columns=["class"])
    assert set(model.predict(rows.head(100))) <= set(adult["class"].unique())
    proba = model.predict_proba(rows)[:, list(model.classes_).index(">50K")]
    assert roc_auc_score(adult["class"] == ">50K", proba) > 0.9
    # Every trial is an MLflow child run of the parent, with its score.
    trials = registry.search_runs([result.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(trials) == 3
    assert all("AUC_weighted" in run.data.metrics for run in trials)


def test_a_missing_target_is_refused_before_training(prefect_api, workdir, s3_parts, cluster):
    with pytest.raises(DataError, match="target column 'income' is not in the training data"):
        train(_config(s3_parts, cluster, target="income"))
    assert not (workdir / "automl-runs" / "mlflow.db").exists()


@pytest.mark.parametrize(("extra", "sentence"), [
    (["--cv", "3"], "n_cross_validations=3 is not available with training_mode='distributed'"),
    (["--data", "table.csv"], "training_data 'table.csv' is not Parquet"),
])
def test_the_command_refuses_what_distributed_mode_cannot_do(workdir, extra, sentence):
    args = ["--data", "parts/", "--target", "y", "--training-mode", "distributed", *extra]
    done = subprocess.run([sys.executable, "-m", "flows.cli", "train", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert sentence in done.stderr and "Traceback" not in done.stderr


def test_a_truncated_lightgbm_predicts_as_its_first_rounds():
    import lightgbm

    from tasks.distributed.boosting import _truncate

    frame = load("adult").head(3000)
    X = frame.select_dtypes("number")
    y = (frame["class"] == ">50K").astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=60, verbose=-1).fit(X, y)
    expected = model.predict_proba(X, num_iteration=25)
    _truncate(model, 25)
    assert model.booster_.current_iteration() == 25
    np.testing.assert_allclose(model.predict_proba(X), expected)


@pytest.mark.parametrize("labels", [2, 3])
def test_the_validation_curve_matches_the_models_own_probabilities(labels):
    import lightgbm

    from tasks.distributed.boosting import _outputs, _raw_curve
    from tasks.distributed.data import Y

    frame = load("adult").head(3000)
    X = frame.select_dtypes("number").astype(np.float32)
    y = pd.qcut(X["age"], labels, labels=False) if labels > 2 else (frame["class"] == ">50K")
    model = lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(X, y.astype(int))
    points = [5, 17, 40]
    curve = _raw_curve(model.booster_, X.assign(**{Y: 0}), points)
    for point, raw in zip(points, curve, strict=True):
        np.testing.assert_allclose(_outputs(raw, labels),
                                   model.predict_proba(X, num_iteration=point), rtol=1e-6)


def test_a_trial_is_sized_to_its_share_of_the_time_left_and_to_its_familys_measured_speed():
    from tasks.distributed.boosting import Fitted
    from tasks.distributed.rounds import MIN_ROUNDS, Rounds

    rounds = Rounds(cells=4e6, threads=2)
    fast = {"learning_rate": 0.1}
    # Ample time: the learning rate's ceiling; little time: fewer rounds; none: below the floor.
    assert rounds.affordable("lightgbm", fast, 3600) == 1000
    assert rounds.affordable("lightgbm", {"learning_rate": 0.02}, 3600) == 5000
    some = rounds.affordable("lightgbm", fast, 60)
    assert MIN_ROUNDS <= some < 1000
    assert rounds.affordable("lightgbm", fast, 6) < MIN_ROUNDS
    # A trial timed at ten times the prior's speed sizes the next ones of its family, not the
    # other family's.
    prior = rounds.per_round("lightgbm")
    rounds.observe("lightgbm", Fitted(None, 10, 100, 0.5, np.empty(0),
                                      fit_seconds=3.0 + 100 * prior * 10))
    assert rounds.affordable("lightgbm", fast, 60) < some / 5
    assert rounds.per_round("xgboost") == Rounds(cells=4e6, threads=2).per_round("xgboost")


def test_the_python_api_trains_a_frame_in_memory_on_the_default_local_cluster(
        prefect_api, workdir):
    """No dask_address, no max_nodes: one worker inside this process, with every core."""
    from automl_flow import AutoMLClassifier

    frame = load("adult").sample(6000, random_state=0)
    model = AutoMLClassifier(
        target="class", training_mode="distributed", iterations=2,
        experiment_timeout_minutes=1, allowed_models=["lightgbm"], verbose=0,
    ).fit(frame)
    assert model.result_.trials == 2 and model.result_.best_family == "lightgbm"
    proba = model.predict_proba(frame.drop(columns=["class"]))
    positive = list(model.classes_).index(">50K")
    assert roc_auc_score(frame["class"] == ">50K", proba[:, positive]) > 0.85
