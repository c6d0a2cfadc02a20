"""The score deployment's explain=True (flows.score): each row's contributions beside the same
predictions, as `automl predict --explain` writes them, on a model a real run registered."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from test_flows.test_score import trained  # noqa: F401 - the fixture: a registered credit_g run

from flows.score import score_flow
from tasks.features.preprocess import required_columns
from tasks.registry.scoring import load_model


def test_explain_adds_contributions_that_add_up_beside_the_same_predictions(trained):  # noqa: F811
    workdir, uri, result, rows = trained
    data = str(workdir / "rows.parquet")
    state = score_flow("scoring", data, str(workdir / "explained.parquet"), tracking_uri=uri,
                       explain=True, return_state=True)
    scored = state.result()
    plain = score_flow("scoring", data, str(workdir / "plain.parquet"), tracking_uri=uri)
    assert plain.explained is None
    assert scored.explained is not None and scored.explained.endswith("of 'good'")
    table = pd.read_parquet(workdir / "explained.parquet")
    without = pd.read_parquet(workdir / "plain.parquet")
    assert len(table) == scored.rows_out == 200

    # The predictions are those scoring writes without explain, and come first.
    pd.testing.assert_frame_equal(table[without.columns], without)
    assert list(table.columns[:len(without.columns)]) == list(without.columns)

    # One contrib_ column per raw column the model reads, in its order; the sum is the output.
    model = load_model(scored.model_uri, uri)
    columns = required_columns(model)
    contrib = [f"contrib_{c}" for c in columns]
    assert list(table.columns[len(without.columns):]) == [*contrib, "base_value",
                                                          "explained_output"]
    total = table["base_value"] + table[contrib].sum(axis=1)
    np.testing.assert_allclose(total, table["explained_output"], rtol=1e-6, atol=1e-6)
    proba = table["proba_good"].to_numpy()
    own = proba if scored.explained.startswith("probability") else np.log(proba / (1 - proba))
    np.testing.assert_allclose(table["explained_output"], own, atol=1e-6)

    # The log says what the columns add up to and how; the Prefect artifact says they are there.
    APILogHandler().flush()  # the lines still queued for the API
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = [log.message for log in client.read_logs(
            LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
        shown = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    line = next(m for m in logs if m.startswith("explained the 200 rows"))
    assert f"= explained_output, the {scored.explained} (" in line and line.endswith(" s)")
    assert f"with each row's contributions to the {scored.explained}" in shown[0].data
