"""tasks.registry.tracking.lineage: the training table as the run's input dataset, against a
real SQLite tracking store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.data.digest_utils import compute_pandas_digest
from mlflow.tracking import MlflowClient
from support import load

from tasks.registry.tracking.lineage import digest, log_training_data


def _mixed() -> pd.DataFrame:
    return pd.DataFrame({
        "number": [1, 2, 3], "text": ["x", "y", "z"], "text_missing": ["x", None, "z"],
        "objects": pd.Series(["x", 1, "z"], dtype=object),
        "objects_missing": pd.Series(["x", np.nan, "y"], dtype=object),
        "category": pd.Categorical(["u", "v", "u"]), "category_missing": pd.Categorical(["u", None, "u"]),
        "category_numbers": pd.Categorical([1, 2, 1]), "flag": [True, False, True],
        "real": [1.5, np.nan, 2.0], "when": pd.to_datetime(["2020-01-01"] * 3),
    })


@pytest.mark.parametrize("name", ["mixed", "adult", "titanic", "ames_housing"])
def test_the_digest_is_mlflows_own(name):
    # Champion and challenger compare these digests: a registered model's must still match.
    frame = _mixed() if name == "mixed" else load(name)
    assert digest(frame) == compute_pandas_digest(frame)
    for column in frame.columns:
        assert digest(frame[[column]]) == compute_pandas_digest(frame[[column]]), column


def test_the_logged_dataset_has_every_column_in_its_schema(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("lineage", artifact_location=str(tmp_path / "art"))
    run_id = client.create_run(experiment).info.run_id
    frame = pd.concat([load("titanic")] * 20, ignore_index=True)  # past the rows MLflow hashes
    value = log_training_data(client, run_id, frame, str(tmp_path / "titanic.parquet"))
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.digest == value
    schema = json.loads(inputs[0].dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == list(frame.columns)
    assert json.loads(inputs[0].dataset.profile)["num_rows"] == len(frame)
    assert client.get_run(run_id).data.tags["automl.data_digest"] == value


def test_a_table_with_two_columns_of_one_name_still_gets_a_digest():
    frame = pd.DataFrame([["a", 1, "b"], ["c", 2, "d"]], columns=["x", "n", "x"])
    assert len(digest(frame)) > 0
