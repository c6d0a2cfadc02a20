"""What a run shows in the Prefect UI (flows.ui), read back from a real Prefect test API."""

from __future__ import annotations

import json
import time
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)

from flows.result import TrainResult
from flows.ui import (
    TrialProgress,
    artifact_key,
    data_name,
    fails_as_sentence,
    publish_result,
    reported_training,
    run_name,
    score_run_name,
)
from tasks.config import AutoMLConfig, parse_config
from tasks.errors import DataError


def flow_run_of(state) -> UUID:
    return state.state_details.flow_run_id


def artifacts_of(flow_run_id: UUID | None = None, key: str | None = None) -> dict[str, object]:
    found = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
        key=ArtifactFilterKey(any_=[key]) if key else None,
    )
    with get_client(sync_client=True) as client:
        return {a.key: a for a in client.read_artifacts(artifact_filter=found)}


def read_flow_run(flow_run_id: UUID):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def a_result(experiment: str = "Credit G") -> TrainResult:
    board = [
        {"rank": 1, "trial": 3, "model": "LightGBM-3", "AUC_weighted": 0.81, "fit_seconds": 0.4,
         "status": "ok"},
        {"rank": 2, "trial": 1, "model": "RandomForest-1", "AUC_weighted": 0.78,
         "fit_seconds": 1.2, "status": "ok"},
        {"rank": 3, "trial": 2, "model": "XGBoost-2", "AUC_weighted": None, "fit_seconds": 0.1,
         "status": "failed"},
    ]
    return TrainResult(
        run_id="abc123", experiment_name=experiment, task="classification",
        validation="5-fold cross-validation", registered_model_name="credit", model_version="4",
        model_uri="models:/credit/4", pkl_uri="/runs/artifacts/model.pkl",
        best_model="LightGBM-3", best_family="lightgbm", best_params={"family": "lightgbm"},
        primary_metric="AUC_weighted", primary_metric_value=0.8123,
        metrics={"AUC_weighted": 0.8123, "accuracy": 0.755}, test_metrics={"AUC_weighted": 0.79},
        trials=3, failed_trials=1, stop_reason="iteration limit (3) reached", wall_seconds=12.3,
        tracking_uri="sqlite:///runs/mlflow.db", leaderboard=board,
        guardrails=[{"name": "Missing feature values imputation", "status": "passed",
                     "detail": "no missing values"}],
        members=[{"model": "LightGBM-3", "weight": 1.0}],
    )


def test_artifact_keys_are_lowercase_letters_digits_and_single_dashes():
    assert artifact_key("Credit G", "progress") == "credit-g-progress"
    assert artifact_key("my_exp.v2", "summary") == "my-exp-v2-summary"
    assert artifact_key("--Weird__Name!!--") == "weird-name"
    assert artifact_key("score", "model.pkl") == "score-model-pkl"


def test_data_name_is_the_file_name_without_credentials_or_query():
    assert data_name("s3://AKIAKEY:pa55word@bucket/tables/credit_g.parquet") == "credit_g.parquet"
    assert data_name(
        "https://acct.blob.core.windows.net/c/x.csv?sv=2024&sig=s3cr3t") == "x.csv"
    assert data_name("az://container/folder/") == "folder"
    assert data_name("/data/credit.csv") == "credit.csv"
    assert data_name("relative/path/t.csv?version=2") == "t.csv"
    for url in ("s3://AKIAKEY:pa55word@bucket/t.parquet", "https://h/t.csv?token=tok3n"):
        assert "pa55word" not in data_name(url) and "tok3n" not in data_name(url)


def test_run_names_say_what_runs_on_which_data(prefect_api):
    @flow(flow_run_name=run_name)
    def training(config: AutoMLConfig) -> str:
        return "trained"

    @flow(flow_run_name=score_run_name)
    def scoring(model: str, data: str) -> str:
        return "scored"

    config = parse_config(training_data="s3://AKIAKEY:pa55word@bucket/x/credit_g.parquet?a=1",
                          target="class", experiment_name="credit")
    state = training(config, return_state=True)
    assert read_flow_run(flow_run_of(state)).name == "credit on credit_g.parquet"

    state = scoring("models:/credit@champion", "https://h/new.csv?sig=abc", return_state=True)
    assert read_flow_run(flow_run_of(state)).name == "score models:/credit@champion on new.csv"
    state = scoring("/models/run 7/model.pkl", "/data/rows.parquet", return_state=True)
    assert read_flow_run(flow_run_of(state)).name == "score model.pkl on rows.parquet"
    # Outside a flow run there are no parameters to name it by.
    assert run_name() == "automl on ?" and score_run_name() == "score model on ?"


def test_a_users_mistake_fails_the_flow_run_with_its_sentence(prefect_api):
    sentence = "target column 'no_such_column' is not in the data; columns are: a, b"

    @flow
    @fails_as_sentence
    def checking(column: str) -> str:
        if column != "a":
            raise DataError(sentence)
        return column

    @flow
    @fails_as_sentence
    def crashing() -> str:
        raise RuntimeError("a bug, not a mistake")

    state = checking("no_such_column", return_state=True)
    assert state.is_failed() and state.message == sentence
    assert read_flow_run(flow_run_of(state)).state.message == sentence
    with pytest.raises(DataError, match="no_such_column"):
        checking("no_such_column")  # the caller still gets the error itself
    assert checking("a") == "a"
    # Anything else is Prefect's own failure, with the exception in it.
    state = crashing(return_state=True)
    assert state.is_failed() and state.message != "a bug, not a mistake"
    assert "RuntimeError" in state.message


def test_outside_a_flow_run_the_mistake_is_raised():
    def checking() -> None:
        raise DataError("bad data")

    with pytest.raises(DataError, match="bad data"):
        fails_as_sentence(checking)()


def test_trial_progress_moves_an_artifact_during_a_flow_run(prefect_api):
    @flow
    def searching() -> list[tuple[float, str]]:
        now = time.monotonic()
        progress = TrialProgress("Progress Test", 4, now, now + 3600)
        seen = []
        for label, best in (("LightGBM-0", None), ("LogisticRegression-1", "LightGBM-0")):
            progress.update(label, best)
            shown = artifacts_of(key="progress-test-progress")["progress-test-progress"]
            seen.append((shown.data, shown.description))
        progress.finish()
        return seen

    state = searching(return_state=True)
    seen = state.result()
    artifact = artifacts_of(flow_run_of(state))["progress-test-progress"]
    assert artifact.type == "progress"
    # Iterations, not time, lead: 1 then 2 of 4 trials within an hour's search.
    assert seen[0][0] == pytest.approx(25, abs=1) and seen[1][0] == pytest.approx(50, abs=1)
    assert seen[1][1] == ("2 of at most 4 trials; last LogisticRegression-1; best LightGBM-0")
    assert (artifact.data, artifact.description) == (100, "2 trials done")


def test_publish_result_draws_the_leaderboard_and_summary(prefect_api):
    @flow
    def publishing() -> None:
        publish_result(a_result())

    state = publishing(return_state=True)
    shown = artifacts_of(flow_run_of(state))
    assert set(shown) == {"credit-g-leaderboard", "credit-g-summary", "credit-g-guardrails"}
    table = shown["credit-g-leaderboard"]
    assert table.type == "table"
    rows = json.loads(table.data)  # Prefect keeps a table as JSON text
    # The registered model first, then every trial.
    assert [row["model"] for row in rows] == ["LightGBM-3", "LightGBM-3", "RandomForest-1",
                                              "XGBoost-2"]
    assert rows[0]["rank"] == "final" and rows[0]["status"] == "registered as models:/credit/4"
    assert rows[3]["AUC_weighted"] == "-"  # a failed trial's missing score
    guardrails = json.loads(shown["credit-g-guardrails"].data)
    assert guardrails == [{"name": "Missing feature values imputation", "status": "passed",
                           "detail": "no missing values"}]
    summary = shown["credit-g-summary"]
    assert summary.type == "markdown"
    assert summary.data.startswith("# Credit G: LightGBM-3")
    assert "AUC_weighted = **0.8123**" in summary.data and "(1 failed, 0 pruned" in summary.data
    assert "Test: AUC_weighted = 0.79" in summary.data


def test_nothing_is_drawn_outside_a_flow_run(prefect_api):
    progress = TrialProgress("Outside Test", 2, time.monotonic(), time.monotonic() + 60)
    progress.update("LightGBM-0", None)
    progress.finish()
    publish_result(a_result("Outside Test"))
    assert progress.id is None and progress.done == 1
    for key in ("outside-test-progress", "outside-test-leaderboard", "outside-test-summary",
                "outside-test-guardrails"):
        assert artifacts_of(key=key) == {}


def test_a_training_flow_is_tagged_and_reports_its_result(prefect_api):
    @flow(flow_run_name=run_name)
    @reported_training
    def training(config: AutoMLConfig) -> TrainResult:
        if config.target == "missing":
            raise DataError("target column 'missing' is not in the data")
        return a_result(config.experiment_name)

    config = parse_config(training_data="/data/t.csv", target="y", experiment_name="Tagged")
    state = training(config, return_state=True)
    assert state.is_completed()
    run = read_flow_run(flow_run_of(state))
    assert set(run.tags) == {"automl", "Tagged", "classification"}
    assert set(artifacts_of(flow_run_of(state))) == {"tagged-leaderboard", "tagged-summary",
                                                     "tagged-guardrails"}

    state = training(config.model_copy(update={"target": "missing"}), return_state=True)
    assert state.is_failed() and state.message == "target column 'missing' is not in the data"
    assert artifacts_of(flow_run_of(state)) == {}


def test_the_command_line_prints_ten_trials_and_says_how_many_more():
    from dataclasses import replace

    from rich.console import Console

    from flows.cli import _report

    board = [{"rank": i, "trial": i, "model": f"LightGBM-{i}", "AUC_weighted": 0.9 - i / 100,
              "fit_seconds": 0.5, "status": "ok"} for i in range(1, 24)]
    board[0] |= {"predict_ms_per_1k_rows": 21.04, "predict_ms_per_row": 9.462}
    console = Console(record=True, width=80)  # a pipe's width
    _report(replace(a_result(), leaderboard=board, trials=23), console)
    shown = console.export_text()
    assert "LightGBM-10 " in shown and "LightGBM-11 " not in shown
    # per 1,000 rows / one row, in one column; '-': the other rows have no predict time
    assert "ms/1k rows /" in shown and "21 / 9.46" in shown and "- / -" in shown
    assert "... and 13 more trials (--json, or the run's leaderboard.json in MLflow" in shown
