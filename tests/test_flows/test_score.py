"""Batch scoring (flows.score) with a model trained and registered by a real run."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from support import copy_store, load

from flows.score import ScoreResult, model_reference, score_flow
from tasks.errors import DataError
from tasks.features.preprocess import required_columns


@pytest.fixture(scope="module")
def trained(credit_run, tmp_path_factory):
    """The session's credit_g run (tests/conftest.py) in a copy of its store, its registered model
    renamed 'scoring' (these tests register more models there), and the result saying so."""
    config, result = credit_run
    workdir = tmp_path_factory.mktemp("score")
    uri = copy_store(config.resolved_tracking_uri, workdir)
    MlflowClient(tracking_uri=uri, registry_uri=uri).rename_registered_model(
        result.registered_model_name, "scoring")
    result = replace(result, registered_model_name="scoring", tracking_uri=uri,
                     model_uri=f"models:/scoring/{result.model_version}")
    rows = load("credit_g").drop(columns=["class"]).sample(200, random_state=4)
    rows.to_parquet(workdir / "rows.parquet")
    return workdir, uri, result, rows


def test_uris_and_pickles_are_taken_as_given(trained):
    _, uri, result, _ = trained
    assert model_reference(result.pkl_uri, None, uri) == (result.pkl_uri, None, "as given")
    assert model_reference("models:/scoring/1", None, uri) == ("models:/scoring/1", "1",
                                                               "as given")
    assert model_reference("models:/scoring@champion", None, uri) == (
        "models:/scoring@champion", None, "as given")
    runs = f"runs:/{result.run_id}/model"
    assert model_reference(runs, None, uri) == (runs, None, "as given")


def test_a_registered_name_means_its_champion_else_its_newest_version(trained):
    _, uri, result, _ = trained
    assert result.aliases == ["champion"]
    assert model_reference("scoring", None, uri) == (
        f"models:/scoring/{result.model_version}", result.model_version, "alias @champion")
    assert model_reference("scoring", "1", uri)[1:] == ("1", "version 1")
    assert model_reference("scoring", "champion", uri)[1:] == (result.model_version,
                                                               "alias @champion")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    source = client.get_model_version_download_uri("scoring", result.model_version)
    client.create_registered_model("copies")
    for _ in range(2):
        client.create_model_version("copies", source, run_id=result.run_id)
    found, version, how = model_reference("copies", None, uri)
    assert (found, version) == ("models:/copies/2", "2")
    assert how.startswith("newest version")
    client.set_registered_model_alias("copies", "champion", "1")
    assert model_reference("copies", None, uri) == ("models:/copies/1", "1", "alias @champion")
    with pytest.raises(DataError, match="registered model 'nothing' .* was not found"):
        model_reference("nothing", None, uri)


def test_scoring_writes_predictions_and_class_probabilities(trained):
    workdir, uri, result, rows = trained
    output = workdir / "predictions.csv"
    state = score_flow("scoring", str(workdir / "rows.parquet"), str(output), tracking_uri=uri,
                       return_state=True)
    scored = state.result()
    assert isinstance(scored, ScoreResult)
    assert scored.rows_in == scored.rows_out == len(rows) == 200
    assert (scored.model_uri, scored.model_version, scored.chosen_by) == (
        f"models:/scoring/{result.model_version}", result.model_version, "alias @champion")
    assert scored.output == str(output)
    table = pd.read_csv(output)
    assert len(table) == 200
    assert {"prediction", "proba_bad", "proba_good"} <= set(table.columns)
    assert set(rows.columns) <= set(table.columns)
    proba = table[["proba_bad", "proba_good"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (table["prediction"] == np.where(proba[:, 1] > proba[:, 0], "good", "bad")).all()
    with open(result.pkl_uri, "rb") as handle:
        pickled = pickle.load(handle)
    assert list(table["prediction"]) == list(pickled.predict(rows))
    with get_client(sync_client=True) as client:
        shown = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert [a.key for a in shown] == ["score-scoring"]
    assert "Scored **200** rows" in shown[0].data


def test_a_pickle_scores_too(trained):
    workdir, _, result, _ = trained
    output = workdir / "from-pickle.parquet"
    scored = score_flow(result.pkl_uri, str(workdir / "rows.parquet"), str(output))
    assert (scored.model_uri, scored.model_version, scored.chosen_by) == (
        result.pkl_uri, None, "as given")
    assert len(pd.read_parquet(output)) == scored.rows_out == 200


def test_a_missing_column_fails_the_flow_with_one_sentence_naming_it(trained):
    workdir, uri, result, rows = trained
    with open(result.pkl_uri, "rb") as handle:
        needed = required_columns(pickle.load(handle))
    gone = needed[0]
    rows.drop(columns=[gone]).to_parquet(workdir / "short.parquet")
    output = workdir / "never.csv"
    state = score_flow("scoring", str(workdir / "short.parquet"), str(output), tracking_uri=uri,
                       return_state=True)
    assert state.is_failed()
    assert "\n" not in state.message and f"lacks column(s) the model needs: {gone}" in (
        state.message)
    assert not output.exists()
    with pytest.raises(DataError, match=gone):
        state.result()
