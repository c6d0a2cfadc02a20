"""The scikit-learn API (flows.estimator) on real shared tables: each fit a real flow run on the
Prefect test API, every trial in a real MLflow store, the model registered."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from sklearn.base import clone
from support import dataset_path, load

from automl_flow import AutoMLClassifier, AutoMLRegressor
from flows.estimator import DATA_FIELDS
from tasks.config import AutoMLConfig
from tasks.errors import AutoMLError, ConfigError, DataError

pytestmark = pytest.mark.slow

FAST = {"iterations": 4, "experiment_timeout_minutes": 2}
CLASSIFIERS = {**FAST, "allowed_models": ["LightGBM", "LogisticRegression", "RandomForest"]}
REGRESSORS = {**FAST, "allowed_models": ["LightGBM", "ElasticNet", "RandomForest"]}


def registered(estimator):
    """The registered version, loaded by MLflow itself from the estimator's model_uri_ (its
    stores named by the variables, not mlflow.set_*_uri, which would outlive the test)."""
    uri = estimator.result_.tracking_uri
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", uri)
        return mlflow.sklearn.load_model(estimator.model_uri_)


@pytest.fixture(scope="module")
def credit(prefect_api, tmp_path_factory):
    """A classifier fitted from a DataFrame and a Series, cross-validated, with a sample weight."""
    workdir = tmp_path_factory.mktemp("credit")
    frame = load("credit_g")
    train, test = frame.iloc[:800], frame.iloc[800:]
    weights = np.where(train["class"] == "bad", 2.0, 1.0)
    model = AutoMLClassifier(workdir=str(workdir), experiment_name="api-credit", **CLASSIFIERS)
    model.fit(train.drop(columns="class"), train["class"], sample_weight=weights)
    return model, test


def test_a_dataframe_fit_registers_what_predict_gives(credit):
    model, test = credit
    X = test.drop(columns="class")
    loaded = registered(model)
    assert np.array_equal(model.predict(X), loaded.predict(X))
    assert np.allclose(model.predict_proba(X), loaded.predict_proba(X))
    assert list(model.classes_) == ["bad", "good"]
    assert list(model.feature_names_in_) == list(X.columns) and model.n_features_in_ == 20
    assert 0.6 < model.score(X, test["class"]) <= 1.0  # accuracy, as scikit-learn's
    assert model.result_.validation.startswith("5-fold")


def test_the_fitted_attributes_describe_the_run(credit):
    model, _ = credit
    board = model.leaderboard_
    assert len(board) == model.result_.trials == 4  # every trial, not the first ten
    assert list(board["rank"]) == list(range(1, 5)) and "AUC_weighted" in board.columns
    assert set(board["status"]) <= {"ok", "pruned", "failed"}
    assert model.best_score_ == model.result_.metrics["AUC_weighted"]
    assert model.refit_time_ > 0
    assert "Task" in set(model.guardrails_["name"])
    client = mlflow.MlflowClient(model.result_.tracking_uri)
    run = client.get_run(model.run_id_)
    assert run.info.status == "FINISHED"
    # The weights trained the model and are not a feature.
    assert run.data.params["weight_column"] == "sample_weight"
    # MLflow records the in-memory table by the same URL as Prefect, and its input dataset.
    source = run.data.params["training_data"]
    assert source.startswith("dataframe://train-800x22-")
    assert run.data.tags["automl.training_data"] == source
    assert [d.dataset.source for d in run.inputs.dataset_inputs] == [json.dumps({"url": source})]
    assert "sample_weight" not in model.feature_names_in_


def test_the_flow_run_records_the_table_by_digest_not_by_value(credit):
    model, _ = credit
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(model.flow_run_id_)
    assert flow_run.state.is_completed()
    config = flow_run.parameters["config"]
    source = config["training_data"]
    # train-ROWSxCOLS-DIGEST: 800 rows, 20 features + target + weights
    assert source.startswith("dataframe://train-800x22-") and len(source.rsplit("-", 1)[1]) == 16
    assert len(json.dumps(flow_run.parameters)) < 5_000  # the 800-row table is not in it
    assert flow_run.name == f"api-credit on {source.removeprefix('dataframe://')}"


def test_the_same_table_gets_the_same_url_and_another_table_another():
    from tasks.data.memory import table_url

    frame = load("credit_g")
    assert table_url(frame, "train") == table_url(frame.copy(), "train")
    changed = frame.copy()
    changed.loc[0, "age"] += 1
    assert table_url(changed, "train") != table_url(frame, "train")


def test_a_fitted_estimator_pickles_and_predicts_in_a_fresh_process(credit, tmp_path):
    model, test = credit
    X = test.drop(columns="class")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    X.to_parquet(tmp_path / "rows.parquet")
    script = ("import pickle, sys, pandas as pd, numpy as np; "
              "m = pickle.load(open(sys.argv[1], 'rb')); "
              "np.save(sys.argv[3], m.predict_proba(pd.read_parquet(sys.argv[2])))")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "model.pkl"), str(tmp_path / "rows.parquet"),
         str(tmp_path / "proba.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.allclose(np.load(tmp_path / "proba.npy"), model.predict_proba(X))


def test_numpy_arrays_with_a_validation_set_train_a_regressor(prefect_api, tmp_path):
    frame = load("concrete").sample(frac=1.0, random_state=0)  # the file is ordered by age
    y = frame.pop("compressive_strength").to_numpy()
    X = frame.to_numpy()
    model = AutoMLRegressor(workdir=str(tmp_path), experiment_name="api-concrete", **REGRESSORS)
    model.fit(X[:700], y[:700], X_valid=X[700:900], y_valid=y[700:900])
    assert model.result_.validation == "given validation data"
    assert list(model.feature_names_in_) == [f"x{i}" for i in range(X.shape[1])]
    rows = X[900:]
    named = pd.DataFrame(rows, columns=model.feature_names_in_)
    assert np.allclose(model.predict(rows), registered(model).predict(named))
    assert model.score(rows, y[900:]) > 0.5  # R², as scikit-learn's
    with pytest.raises(DataError, match=r"X has shape \(130, 3\), and this model takes .* 8 col"):
        model.predict(rows[:, :3])


def test_numpy_arrays_with_feature_names_and_a_target_name_train_a_classifier(prefect_api,
                                                                                 tmp_path):
    frame = load("blood_transfusion")
    names = [c for c in frame.columns if c != "donated_march_2007"]
    model = AutoMLClassifier(workdir=str(tmp_path), experiment_name="api-blood", **CLASSIFIERS)
    model.fit(frame[names].to_numpy(), frame["donated_march_2007"].to_numpy(),
              feature_names=names, target="donated")
    assert list(model.feature_names_in_) == names
    assert model.result_.validation.startswith("5-fold")  # cross-validation without X_valid
    assert set(model.classes_) == set(frame["donated_march_2007"].unique())
    rows = frame[names].to_numpy()[:50]
    assert np.array_equal(model.predict(rows), registered(model).predict(frame[names][:50]))


def test_a_dataframe_holding_its_target_and_a_validation_frame_train_a_regressor(prefect_api,
                                                                                   tmp_path):
    frame = load("concrete").sample(frac=1.0, random_state=1)
    target = "compressive_strength"
    model = AutoMLRegressor(workdir=str(tmp_path), experiment_name="api-concrete-frame",
                            target=target, **REGRESSORS)
    model.fit(frame.iloc[:700], X_valid=frame.iloc[700:900])
    assert model.result_.validation == "given validation data"
    assert target not in model.feature_names_in_ and model.n_features_in_ == 8
    rest = frame.iloc[900:]
    assert np.allclose(model.predict(rest), registered(model).predict(rest))
    assert model.score(rest.drop(columns=target), rest[target]) > 0.5


def test_a_path_trains_as_the_command_line_does(prefect_api, tmp_path):
    model = AutoMLClassifier(workdir=str(tmp_path), experiment_name="api-path", iterations=2,
                             allowed_models=["LightGBM"])
    model.fit(str(dataset_path("blood_transfusion")), target="donated_march_2007")
    frame = load("blood_transfusion")
    assert model.result_.trials == 2
    assert sorted(model.feature_names_in_) == sorted(c for c in frame.columns
                                                     if c != "donated_march_2007")
    assert np.array_equal(model.predict(frame.head(20)), registered(model).predict(frame.head(20)))
    with pytest.raises(DataError, match=r"^X is the path '.*blood_transfusion.parquet', so y must"):
        model.fit(str(dataset_path("blood_transfusion")), frame["donated_march_2007"])


def test_parameters_round_trip_through_get_params_set_params_and_clone():
    model = AutoMLClassifier(iterations=7, allowed_models=["LightGBM"], primary_metric="accuracy")
    params = model.get_params()
    # Every AutoMLConfig knob except what fit's arguments give, and verbose.
    expected = (set(AutoMLConfig.model_fields) - set(DATA_FIELDS)) | {"target", "verbose"}
    assert set(params) == expected
    assert params["experiment_timeout_minutes"] == AutoMLConfig.model_fields[
        "experiment_timeout_minutes"].default
    copy = clone(model)
    assert copy is not model and copy.get_params() == params
    copy.set_params(iterations=3, sampler="random")
    assert copy.iterations == 3 and copy.sampler == "random" and model.iterations == 7
    assert repr(model) == ("AutoMLClassifier(allowed_models=['LightGBM'], iterations=7,\n"
                           "                 primary_metric='accuracy')")


def test_a_bad_knob_is_the_config_sentence_before_any_training(tmp_path):
    frame = load("credit_g")
    with pytest.raises(ConfigError, match=r"^iterations=0 is invalid: Input should be greater"):
        AutoMLClassifier(iterations=0, workdir=str(tmp_path)).fit(
            frame.drop(columns="class"), frame["class"])
    with pytest.raises(ConfigError, match="choose one validation scheme"):
        AutoMLClassifier(n_cross_validations=3, workdir=str(tmp_path)).fit(
            frame.drop(columns="class"), frame["class"], X_valid=frame.drop(columns="class"),
            y_valid=frame["class"])
    assert not (tmp_path / "mlflow.db").exists()


def test_mismatched_lengths_and_shapes_are_one_sentence(tmp_path):
    frame = load("credit_g")
    X = frame.drop(columns="class")
    model = AutoMLClassifier(workdir=str(tmp_path))
    with pytest.raises(DataError, match=r"^X has 1000 rows and y has 999 values; pass one value"):
        model.fit(X, frame["class"][:999])
    with pytest.raises(DataError, match=r"^X must be 2-D \(rows by columns\), got an array of "):
        model.fit(X["age"].to_numpy(), frame["class"])
    with pytest.raises(DataError, match=r"^feature_names has 2 names and X has 20 columns"):
        model.fit(X.to_numpy(), frame["class"], feature_names=["a", "b"])
    with pytest.raises(DataError, match=r"^fit was given no target"):
        model.fit(X)
    with pytest.raises(DataError, match=r"^X already has a column named 'age'"):
        model.fit(X, frame["class"].rename("age"))
    assert not (tmp_path / "mlflow.db").exists()


def cli_error(*args: str, cwd: Path) -> str:
    from prefect.settings import PREFECT_API_URL

    # The session's Prefect test API, as the in-process fit uses: a data error found after the
    # flow starts would otherwise wait ~15 s for the command's own temporary server first.
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "flows.cli", "train", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    return " ".join(done.stderr.removeprefix("error: ").split())


@pytest.mark.parametrize("defect", ["wrong target", "one class", "missing labels"])
def test_bad_data_raises_the_sentence_the_command_line_prints(defect, prefect_api, tmp_path):
    frame = load("blood_transfusion").head(200)
    target = "donated_march_2007"
    name = {"wrong target": "donated", "one class": target, "missing labels": target}[defect]
    if defect == "one class":
        frame[target] = 1
    if defect == "missing labels":
        frame[target] = frame[target].astype("float64")
        frame.loc[[3, 7], target] = np.nan
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    printed = cli_error("--data", str(path), "--target", name, "--task", "classification",
                        "--iterations", "2", cwd=tmp_path)
    model = AutoMLClassifier(workdir=str(tmp_path / "api"), iterations=2)
    with pytest.raises(AutoMLError) as raised:
        model.fit(frame, target=name)
    # The same sentence, naming the in-memory table where the command names its file.
    said = re.sub(r"dataframe://train-200x5-[0-9a-f]{16}", str(path), str(raised.value))
    assert " ".join(said.split()) == printed
    assert not (tmp_path / "api" / "mlflow.db").exists() or not mlflow.MlflowClient(
        f"sqlite:///{tmp_path / 'api' / 'mlflow.db'}").search_registered_models()
