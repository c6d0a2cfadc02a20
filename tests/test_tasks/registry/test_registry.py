"""Champion / challenger in a real registry: the SQLite default and a real `mlflow server`.

Every assertion reads the registry back through a new client, not what the flow returned.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import urllib.request

import numpy as np
import pytest
from support import dataset_path, free_port, load, stop, wait_for_http
from mlflow.tracking import MlflowClient
from sklearn.model_selection import train_test_split

from flows.automl import automl_flow
from tasks.config import parse_config
from tasks.metrics import get_metric
from tasks.registry.promotion import promote
from tasks.final.evaluation import HeldOutPredictions
from tasks.registry.tracking import Tracker
from tasks.models.predict import predict_scores

pytestmark = pytest.mark.slow

# Same data, same seed, so every run holds out the same test rows; holdout validation is quick.
CREDIT = {"target": "class", "test_size": 0.2, "validation_size": 0.25, "random_state": 0}


def train(workdir, name="credit", **knobs):
    config = parse_config(training_data=str(dataset_path("credit_g")), workdir=str(workdir),
                          experiment_name=name, model_name=name, **{**CREDIT, **knobs})
    return config, automl_flow(config)


def client_of(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(name).aliases.items()}


@pytest.fixture(scope="module")
def ladder(prefect_api, tmp_path_factory):
    """A weak first model, a better one, then a worse one, all under one model name."""
    workdir = tmp_path_factory.mktemp("ladder")
    weak = train(workdir, allowed_models=["KNN"], iterations=1, enable_ensembling=False)
    good = train(workdir, allowed_models=["LogisticRegression", "LightGBM"], iterations=3)
    bad = train(workdir, allowed_models=["DecisionTree"], iterations=1, enable_ensembling=False)
    return workdir, weak, good, bad


def test_first_version_becomes_champion(ladder):
    _, (config, weak), _, _ = ladder
    tags = client_of(config.resolved_tracking_uri).get_model_version("credit", "1").tags
    assert tags["automl.decision"] == "promoted" and tags["automl.reason"] == "no champion yet"
    assert weak.promoted and weak.aliases == ["champion"]


def test_better_model_takes_champion_worse_one_is_challenger(ladder):
    _, (config, weak), (_, good), (_, bad) = ladder
    client = client_of(config.resolved_tracking_uri)
    assert aliases(client, "credit") == {"champion": good.model_version,
                                         "challenger": bad.model_version}
    good_tags = client.get_model_version("credit", good.model_version).tags
    assert good_tags["automl.champion_version"] == weak.model_version
    assert float(good_tags["automl.score"]) > float(good_tags["automl.champion_score"])
    bad_tags = client.get_model_version("credit", bad.model_version).tags
    assert bad_tags["automl.decision"] == "challenger"
    assert bad_tags["automl.champion_version"] == good.model_version
    assert bad_tags["automl.basis"] == "test" and bad_tags["automl.metric"] == "AUC_weighted"
    # The champion's score is its own prediction of the same test rows: the test metric it logged.
    assert float(bad_tags["automl.champion_score"]) == pytest.approx(good.test_metrics["AUC_weighted"])
    assert float(bad_tags["automl.score"]) < float(bad_tags["automl.champion_score"])
    run = client.get_run(bad.run_id).data
    assert run.tags["registry.decision"] == "challenger"
    assert run.metrics["registry_champion_score"] > run.metrics["registry_new_score"]


def test_no_promote_registers_without_moving_aliases(ladder):
    workdir, (config, _), (_, good), (_, bad) = ladder
    _, quiet = train(workdir, allowed_models=["LogisticRegression"], iterations=1, promote=False)
    client = client_of(config.resolved_tracking_uri)
    assert aliases(client, "credit") == {"champion": good.model_version,
                                         "challenger": bad.model_version}
    tags = client.get_model_version("credit", quiet.model_version).tags
    assert tags["automl.decision"] == "not promoted"
    assert tags["automl.reason"] == "not promoted (--no-promote)"
    assert not quiet.promoted and quiet.aliases == []


def test_two_runs_deciding_at_once_leave_the_best_as_champion(ladder):
    """Two versions, both better than the champion, decide at the same moment: the better one
    must end as champion whatever the order (without the lock both compare against the old
    champion and the last writer wins)."""
    _, (config, weak), (_, good), (_, bad) = ladder
    uri = config.resolved_tracking_uri
    client = client_of(uri)
    frame = load("credit_g")
    _, test = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["class"])
    classes = np.array(["bad", "good"])
    y = np.searchsorted(classes, test["class"])
    held = HeldOutPredictions("test", test.drop(columns=["class"]), y, np.zeros((len(y), 2)),
                              None, classes, 1.0, 1)
    metric = get_metric("AUC_weighted", "classification")

    def version_of(result) -> tuple[str, float]:
        source = client.get_model_version_download_uri("credit", result.model_version)
        with open(result.pkl_uri, "rb") as handle:
            pred = predict_scores(pickle.load(handle), held.X, classes)
        return str(client.create_model_version("race", source).version), metric(y, pred)

    client.create_registered_model("race")
    old, old_score = version_of(bad)
    client.set_registered_model_alias("race", "champion", old)
    (lower, low), (higher, high) = version_of(weak), version_of(good)
    assert old_score < low < high
    start = threading.Barrier(2)

    def decide(version: str, score: float) -> None:
        tracker = Tracker(uri, "credit", None)
        start.wait()
        promote(tracker, "race", version, held, metric, score, allowed=True, digest=None)

    threads = [threading.Thread(target=decide, args=pair) for pair in ((lower, low), (higher, high))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh = client_of(uri)
    assert aliases(fresh, "race")["champion"] == higher
    assert fresh.get_model_version("race", higher).tags["automl.decision"] == "promoted"
    lower_tags = fresh.get_model_version("race", lower).tags
    # Whichever decided first, the tags of the lower one name the champion it was compared to.
    if lower_tags["automl.decision"] == "challenger":
        assert lower_tags["automl.champion_version"] == higher
    else:
        assert lower_tags["automl.champion_version"] == old


def test_a_champion_that_cannot_score_the_data_is_replaced(ladder):
    _, (config, _), (_, good), _ = ladder
    client = client_of(config.resolved_tracking_uri)
    source = client.get_model_version_download_uri("credit", good.model_version)
    client.create_registered_model("schema")
    old = str(client.create_model_version("schema", source).version)
    client.set_registered_model_alias("schema", "champion", old)
    new = str(client.create_model_version("schema", source).version)
    frame = load("concrete").head(50)  # another table: none of the champion's columns
    y = frame.pop("compressive_strength").to_numpy()
    held = HeldOutPredictions("test", frame, y, y, None, None, float(np.ptp(y)), 1)
    tracker = Tracker(config.resolved_tracking_uri, "credit", None)
    promote(tracker, "schema", new, held, get_metric("r2_score", "regression"), 1.0,
            allowed=True, digest=None)
    fresh = client_of(config.resolved_tracking_uri)
    assert aliases(fresh, "schema") == {"champion": new}
    reason = fresh.get_model_version("schema", new).tags["automl.reason"]
    assert reason.startswith(f"champion version {old} cannot score this data (this data lacks")


def test_run_carries_charts_card_curve_and_environment(ladder):
    _, _, (config, good), _ = ladder
    client = client_of(config.resolved_tracking_uri)
    top = {a.path for a in client.list_artifacts(good.run_id)}
    assert {"charts", "model_card.md", "config.json", "environment.json", "model", "model.pkl",
            "leaderboard.json", "guardrails.json", "feature_importance.json"} <= top
    charts = {a.path.removeprefix("charts/") for a in client.list_artifacts(good.run_id, "charts")}
    assert {"confusion_matrix.png", "roc.png", "precision_recall.png", "calibration.png",
            "lift_gains.png", "permutation_importance.png", "optimization_history.png",
            "best_so_far_time.png", "param_importance.png"} <= charts
    curve = sorted(client.get_metric_history(good.run_id, "best_so_far_AUC_weighted"),
                   key=lambda m: m.step)
    # Steps count finished trials (two at a time finish out of number order).
    assert curve[0].step == 0 and curve[-1].step == good.trials - 1
    assert all(b.value >= a.value for a, b in zip(curve, curve[1:]))
    ok = [r["AUC_weighted"] for r in good.leaderboard if r["status"] == "ok"]
    assert curve[-1].value == pytest.approx(max(ok))
    card = open(client.download_artifacts(good.run_id, "model_card.md")).read()
    assert card.startswith(f"# credit version {good.model_version}")
    assert "## Registry decision" in card and "charts/roc.png" in card
    env = json.load(open(client.download_artifacts(good.run_id, "environment.json")))
    assert env["packages"]["scikit-learn"] and env["packages"]["mlflow"]
    child = client.search_runs([client.get_experiment_by_name("credit").experiment_id],
                               filter_string=f"tags.mlflow.parentRunId = '{good.run_id}'")[0]
    assert child.info.run_name.split("-")[0] in ("LogisticRegression", "LightGBM")
    assert child.data.tags["status"] == "ok"
    assert {"fit_seconds", "predict_seconds", "model_size_bytes"} <= set(child.data.metrics)


@pytest.fixture(scope="module")
def on_server(prefect_api, mlflow_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("served")
    config = parse_config(training_data=str(dataset_path("blood_transfusion")),
                          target="donated_march_2007", iterations=2, validation_size=0.25,
                          workdir=str(workdir), experiment_name="blood", model_name="blood",
                          tracking_uri=mlflow_server)
    return config, automl_flow(config)


def test_train_through_a_tracking_server_sets_the_champion(on_server, mlflow_server):
    config, result = on_server
    client = client_of(mlflow_server)
    assert aliases(client, "blood") == {"champion": result.model_version}
    version = client.get_model_version_by_alias("blood", "champion")
    assert version.run_id == result.run_id
    assert version.tags["automl.decision"] == "promoted"
    assert not (config.workdir_path / "mlflow.db").exists()  # nothing went to the embedded store


def test_served_model_answers_a_prediction_request(on_server, mlflow_server, tmp_path):
    _, result = on_server
    port = free_port()
    # The scoring server runs `uvicorn` from PATH: the venv's, as when it is activated.
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "PATH": path}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/blood@champion",
         "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"],
        env=env, cwd=tmp_path, stdout=open(tmp_path / "serve.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        try:
            wait_for_http(f"http://127.0.0.1:{port}/ping", server)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from exc
        rows = load("blood_transfusion").drop(columns=["donated_march_2007"]).head(8)
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split")}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            served = json.load(answer)["predictions"]
    finally:
        stop(server)
    local = client_of(mlflow_server).download_artifacts(result.run_id, "model.pkl", str(tmp_path))
    with open(local, "rb") as handle:
        expected = pickle.load(handle).predict(rows)
    assert [str(p) for p in served] == [str(p) for p in expected]


def test_every_mlflow_model_uri_form_loads_the_version_it_names(ladder):
    """models:/NAME/latest, /STAGE, @ALIAS and /VERSION: each the version MLflow would give
    (models:/NAME/latest was refused as a non-integer version)."""
    from tasks.errors import DataError
    from tasks.registry.scoring import load_model

    _, (config, weak), (_, good), _ = ladder
    uri = config.resolved_tracking_uri
    client = client_of(uri)
    newest = max(int(v.version) for v in client.search_model_versions("name = 'credit'"))
    rows = load("credit_g").drop(columns=["class"]).head(40)

    def proba(model_uri: str) -> np.ndarray:
        return load_model(model_uri, uri).predict_proba(rows)

    assert np.allclose(proba("models:/credit/latest"), proba(f"models:/credit/{newest}"))
    assert not np.allclose(proba("models:/credit/latest"), proba(f"models:/credit/{weak.model_version}"))
    assert np.allclose(proba("models:/credit@champion"), proba(f"models:/credit/{good.model_version}"))
    with pytest.warns(FutureWarning):  # stages are deprecated in MLflow, still valid URIs
        client.transition_model_version_stage("credit", weak.model_version, "Staging")
    assert np.allclose(proba("models:/credit/Staging"), proba(f"models:/credit/{weak.model_version}"))
    with pytest.raises(DataError, match="no version in stage 'Archived'"):
        load_model("models:/credit/Archived", uri)
