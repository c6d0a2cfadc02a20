"""enable_onnx_compatible_models end to end: a run searches only what converts and logs the
graph beside the model, and `automl predict --onnx` scores with onnxruntime what the pickle
scores. (Without the flag, a model that does not convert: tests/test_tasks/registry/
test_publish.py.)"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from support import load, run_cli

from tasks.models.families import FAMILIES, ONNX_FAMILIES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """credit_g's first 600 rows to train on; 200 others to score, with an unseen level and
    missing values written in."""
    folder = tmp_path_factory.mktemp("onnx-run")
    frame = load("credit_g")
    frame.iloc[:600].to_parquet(folder / "train.parquet")
    rows = frame.iloc[600:800].drop(columns=["class"]).reset_index(drop=True)
    rows = rows.astype({"purpose": object, "savings_status": object})
    rows.loc[:9, "purpose"] = "spaceship"
    rows.loc[10:19, "savings_status"] = None
    rows.loc[20:29, "age"] = np.nan
    rows.to_csv(folder / "new.csv", index=False)
    return folder


def _train(folder, prefect_api, **knobs):
    from flows.automl import automl_flow
    from tasks.config import parse_config

    workdir = folder / "automl-runs"
    config = parse_config(training_data=str(folder / "train.parquet"), target="class",
                          max_concurrent_iterations=2, workdir=str(workdir), **knobs)
    return config, automl_flow(config)


def _tags(config, result):
    client = mlflow.MlflowClient(config.resolved_tracking_uri)
    return client.get_run(result.run_id).data.tags


def test_an_onnx_compatible_run_scores_the_same_with_onnxruntime(tables, prefect_api):
    config, result = _train(tables, prefect_api, iterations=3, experiment_name="portable",
                            enable_onnx_compatible_models=True)
    tags = _tags(config, result)
    assert tags["onnx_export"].startswith("exported to onnx/model.onnx"), tags["onnx_export"]
    convertible = {FAMILIES[key].name for key in ONNX_FAMILIES}
    assert {str(row["model"]).rpartition("-")[0] for row in result.leaderboard} <= convertible
    onnx = run_cli("predict", "--onnx", "--model", result.model_uri, "--data", "new.csv",
                   "--output", "onnx.csv", cwd=tables)
    plain = run_cli("predict", "--model", result.model_uri, "--data", "new.csv",
                    "--output", "pickle.csv", cwd=tables)
    assert onnx.returncode == 0, onnx.stderr
    assert plain.returncode == 0, plain.stderr
    assert "(ONNX graph, onnxruntime)" in onnx.stderr
    by_onnx, by_pickle = pd.read_csv(tables / "onnx.csv"), pd.read_csv(tables / "pickle.csv")
    assert (by_onnx["prediction"] == by_pickle["prediction"]).all()
    np.testing.assert_allclose(by_onnx[["proba_bad", "proba_good"]],
                               by_pickle[["proba_bad", "proba_good"]], atol=1e-5)

