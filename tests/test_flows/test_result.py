"""What a training run hands back (flows.result): TrainResult built by a real small run, checked
against itself, MLflow and the flow's steps."""

from __future__ import annotations

import json
from dataclasses import replace

import optuna
import pytest
from mlflow.tracking import MlflowClient

from flows import steps
from flows.summary import leaderboard_lines, leaderboard_rows, mlflow_links, summary_markdown
from tasks.search.study import open_storage

# Every step of the training flow, in the order it runs, by the name its phase is timed under
# (flows.steps calls export-onnx `export`).
STEPS = ["ingest", "inspect", "split", "guardrails", "track", "search", "ensemble", "refit",
         "evaluate", "register", "export-onnx", "report", "describe"]


@pytest.fixture(scope="module")
def trained(credit_run):
    """The session's credit_g run (tests/conftest.py): 8 trials, registered as 'result'."""
    return credit_run


def test_to_dict_is_json_and_round_trips_the_fields(trained):
    _, result = trained
    text = json.dumps(result.to_dict(), default=str)
    back = json.loads(text)
    assert back["run_id"] == result.run_id and back["trials"] == result.trials == 8
    assert back["leaderboard"] == json.loads(json.dumps(result.leaderboard, default=str))
    assert back["model_uri"] == f"models:/result/{result.model_version}"


def test_the_leaderboard_ranks_ok_trials_best_first(trained):
    _, result = trained
    board = result.leaderboard
    assert 0 < len(board) <= 10 and len(board) == min(result.trials, 10)
    assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
    statuses = [row["status"] for row in board]
    ok = [row["AUC_weighted"] for row in board if row["status"] == "ok"]
    assert ok and ok == sorted(ok, reverse=True)
    assert statuses[: len(ok)] == ["ok"] * len(ok)  # the others come after
    assert result.failed_trials == statuses.count("failed")
    assert result.pruned_trials == statuses.count("pruned")
    assert result.trials == len(board)


def test_phase_seconds_cover_every_step_that_ran(trained):
    _, result = trained
    # the steps as the module names them
    assert {step.removesuffix("-onnx") for step in STEPS} <= set(steps.__all__)
    assert list(result.phase_seconds) == STEPS
    assert all(seconds >= 0 for seconds in result.phase_seconds.values())
    assert result.phase_seconds["search"] > 0
    # The tracking step runs beside the search; the others one after another.
    assert sum(v for k, v in result.phase_seconds.items() if k != "track") <= result.wall_seconds


def test_the_result_agrees_with_what_mlflow_recorded(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    parent = client.get_run(result.run_id).data
    assert parent.metrics["trials"] == result.trials
    assert parent.tags["best_model"] == result.best_model
    assert parent.tags["stop_reason"] == result.stop_reason
    assert parent.metrics["best_AUC_weighted"] == pytest.approx(result.primary_metric_value)
    assert parent.metrics["test_AUC_weighted"] == pytest.approx(result.test_metrics["AUC_weighted"])
    assert result.primary_metric == "AUC_weighted" and result.task == "classification"
    assert result.primary_metric_value == result.metrics["AUC_weighted"]
    version = client.get_model_version("result", result.model_version)
    assert version.run_id == result.run_id
    assert result.promoted and result.aliases == ["champion"]
    assert result.registry["reason"] == "no champion yet"
    best = client.search_runs(
        [client.get_experiment_by_name("result").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'",
        order_by=["metrics.AUC_weighted DESC"], max_results=1)[0]
    assert result.leaderboard[0]["model"] == best.info.run_name
    # The best trial's parameters, with what its refit changed (the rounds early stopping kept).
    logged = best.data.params
    assert result.best_params["family"] == logged["family"]
    for name, value in result.best_params.items():
        assert str(value) == logged.get(f"refit_{name}", logged[name]), name


def test_the_prefect_leaderboard_has_the_registered_model_first_then_every_trial(trained):
    _, result = trained
    rows = leaderboard_rows(result)
    final, trials = rows[0], rows[1:]
    assert final["rank"] == "final" and final["model"] == result.best_model
    assert final["status"] == f"registered as {result.model_uri}"
    assert [row["model"] for row in trials] == [row["model"] for row in result.leaderboard]
    for shown, row in zip(trials, result.leaderboard, strict=True):
        value = row["AUC_weighted"]
        if value is None:
            assert shown["AUC_weighted"] == "-"
        else:  # 4 significant digits, not 16 decimals
            assert shown["AUC_weighted"] == f"{value:.4g}" and len(shown["AUC_weighted"]) <= 6
    # The registered model's members are trials of this run, their weights a blend's.
    labels = {row["model"] for row in result.leaderboard}
    assert result.members and {m["model"] for m in result.members} <= labels
    assert sum(float(m["weight"]) for m in result.members) == pytest.approx(1.0, abs=1e-3) \
        or result.best_family == "StackEnsemble"
    if len(result.members) > 1:
        assert all(str(m["model"]) in final["members"] for m in result.members)


def test_the_summary_tells_the_registry_decision_mlflow_holds(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    aliases = client.get_model_version("result", result.model_version).aliases
    text = summary_markdown(result)
    assert f"version {result.model_version} of `result`, which holds" in text
    assert all(f"@{alias}" in text for alias in aliases) and aliases
    assert result.registry["reason"] in text
    for phase in STEPS:
        assert f"| {phase} |" in text
    # The embedded store has no pages until served: the summary says how to serve it.
    assert f"mlflow ui --backend-store-uri {config.resolved_tracking_uri}" in text


def test_links_to_a_tracking_server_open_the_run_and_version_pages(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri)
    # The experiment in the run's link is the run's own.
    assert client.get_run(result.run_id).info.experiment_id == result.experiment_id
    served = replace(result, tracking_uri="http://127.0.0.1:5000/")
    links = mlflow_links(served)
    assert links["run"] == (f"http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs/"
                            f"{result.run_id}?workflowType=machine_learning")
    assert links["experiment"].endswith("?workflowType=machine_learning")
    assert links["model version"] == ("http://127.0.0.1:5000/#/models/result/versions/"
                                      f"{result.model_version}")
    assert f"[{links['run']}]({links['run']})" in summary_markdown(served)


def test_the_logged_leaderboard_names_the_model_and_counts_the_rest(trained):
    _, result = trained
    lines = leaderboard_lines(result, shown=1)
    assert len(lines) == 1 + 2 + 1 and result.trials > 1
    assert f"registered as {result.model_uri}" in lines[1]
    best = result.leaderboard[0]
    assert lines[2].split()[:2] == ["1", str(best["model"])]
    assert lines[3] == (f"  ... and {result.trials - 1} more (the run's leaderboard artifact "
                        "lists every one)")


def test_an_embedded_store_links_to_the_ui_that_serves_it(trained, monkeypatch):
    """`make deploy` serves the deployments' SQLite store in an MLflow UI and says where."""
    config, result = trained
    assert result.tracking_uri.startswith("sqlite:")
    monkeypatch.setenv("AUTOML_MLFLOW_UI_URL", "http://127.0.0.1:5001/")
    links = mlflow_links(result)
    assert links["run"] == (f"http://127.0.0.1:5001/#/experiments/{result.experiment_id}/runs/"
                            f"{result.run_id}?workflowType=machine_learning")
    assert "mlflow ui --backend-store-uri" not in summary_markdown(result)
    monkeypatch.setenv("AUTOML_MLFLOW_UI_URL", " ")
    assert set(mlflow_links(result)) == {"store"}


def test_trial_runs_carry_the_trials_own_start_and_end(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri)
    children = client.search_runs([result.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    spans = sorted((r.info.start_time / 1000, r.info.end_time / 1000) for r in children)
    assert len(spans) == result.trials
    # Each run's span lies within its Optuna trial's, from the ask to the tell.
    storage = open_storage(None, config.workdir_path)
    (name,) = optuna.get_all_study_names(storage)
    asked = {t.number: t for t in optuna.load_study(study_name=name, storage=storage).trials}
    for run in children:
        trial = asked[int(run.data.tags["trial_number"])]
        assert trial.datetime_start.timestamp() - 0.01 <= run.info.start_time / 1000
        assert run.info.end_time / 1000 <= trial.datetime_complete.timestamp() + 0.01
    # Two trials ran at once (max_concurrent_iterations=2): some runs overlap in time, which
    # runs logged one after another when each trial ended never do.
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def test_the_mlflow_run_is_named_and_linked_like_its_prefect_flow_run(trained):
    from uuid import UUID

    from prefect.client.orchestration import get_client

    config, result = trained
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(result.flow_run_id))
    parent = MlflowClient(tracking_uri=config.resolved_tracking_uri).get_run(result.run_id)
    assert parent.info.run_name == flow_run.name == "result on credit_g.parquet"
    assert parent.data.tags["prefect.flow_run_id"] == result.flow_run_id
    # A server the user named keeps its pages: the run links to its flow run's page.
    assert parent.data.tags["prefect.flow_run_url"].endswith(
        f"/flow-runs/flow-run/{result.flow_run_id}")


def trial_runs(config, result) -> list:
    """The run's trial (child) runs in MLflow."""
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    return client.search_runs([client.get_experiment_by_name("result").experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")


def test_each_trial_that_ran_every_fold_has_its_predict_time(trained):
    config, result = trained
    children = trial_runs(config, result)
    logged = {c.info.run_name: c.data.metrics.get("predict_ms_per_1k_rows") for c in children}
    shown = {str(row["model"]): row for row in leaderboard_rows(result)[1:]}
    for row in result.leaderboard:
        speed, label = row["predict_ms_per_1k_rows"], str(row["model"])
        assert (speed is not None) == (row["status"] == "ok"), row
        if speed is None:
            assert logged[label] is None and shown[label]["predict_ms_per_1k_rows"] == "-"
        else:  # measured around the validation predict: well under a second per 1,000 rows
            assert 0 < speed < 1000 and logged[label] == pytest.approx(speed, rel=1e-3)
            assert shown[label]["predict_ms_per_1k_rows"] == f"{speed:.3g}"


def test_the_run_logs_a_self_contained_html_report(trained, tmp_path):
    import base64
    from html.parser import HTMLParser
    from pathlib import Path

    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    names = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"model_card.md", "report.html"} <= names
    page = Path(client.download_artifacts(result.run_id, "report.html", str(tmp_path))).read_text()

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.cells = [], []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])

        def handle_data(self, data):
            self.cells.append(data)

    parsed = Page()
    parsed.feed(page)
    parsed.close()
    # One inline PNG per chart the run logged, the very bytes logged.
    charts = sorted(a.path for a in client.list_artifacts(result.run_id, "charts"))
    assert len(charts) >= 5 and all(path.endswith(".png") for path in charts)
    local = Path(client.download_artifacts(result.run_id, "charts", str(tmp_path)))
    assert sorted(parsed.images) == sorted(
        "data:image/png;base64," + base64.b64encode((local / Path(p).name).read_bytes()).decode()
        for p in charts)
    # The leaderboard: the registered model, then every trial.
    text = "".join(parsed.cells)
    assert f"registered as {result.model_uri}" in text
    assert all(str(row["model"]) in parsed.cells for row in result.leaderboard)
    assert result.registry["reason"] in text
    assert all(check["name"] in parsed.cells for check in result.guardrails)
    assert "http" not in page  # nothing fetched when it is viewed


def test_the_run_and_the_version_have_descriptions(trained):
    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    tags = client.get_run(result.run_id).data.tags
    run = tags["mlflow.note.content"]
    score = f"{result.primary_metric_value:.4g}"
    assert run.startswith(f"**{result.best_model}** is the best model: AUC_weighted = **{score}**")
    assert f"after {result.trials} trials" in run
    assert f"version {result.model_version} of `result`, which holds @champion" in run
    flow_run = tags["prefect.flow_run_name"]
    url = tags.get("prefect.flow_run_url")  # the flow run's page, when it outlives the run
    assert run.endswith(f"Prefect flow run [{flow_run}]({url})." if url
                        else f"Prefect flow run `{flow_run}`.")
    version = client.get_model_version("result", result.model_version).description
    assert version.startswith(f"**{result.best_model}**, AUC_weighted = **{score}**")
    assert "trained on `credit_g.parquet` (" in version
    assert f"MLflow run `{result.run_id}`" in version


def test_every_ok_trial_and_the_final_model_have_their_inference_cost(trained, tmp_path):
    from pathlib import Path

    config, result = trained
    children = trial_runs(config, result)
    logged = {c.info.run_name: c.data.metrics.get("predict_ms_per_row") for c in children}
    shown = {str(row["model"]): row for row in leaderboard_rows(result)[1:]}
    for row in result.leaderboard:
        row_ms, label = row["predict_ms_per_row"], str(row["model"])
        assert (row_ms is not None) == (row["status"] == "ok") == bool(row["model_bytes"]), row
        if row_ms is not None:
            assert 0 < row_ms < 1000 and logged[label] == pytest.approx(row_ms, rel=1e-3)
            assert shown[label]["predict_ms_per_row"] == f"{row_ms:.3g}"
    cost = result.inference
    assert set(cost) == {"predict_ms_per_1k_rows", "predict_ms_per_row", "model_bytes"}
    assert 0 < cost["predict_ms_per_row"] < 1000 and cost["model_bytes"] > 1000
    final = leaderboard_rows(result)[0]
    assert final["predict_ms_per_row"] == f"{cost['predict_ms_per_row']:.3g}"
    assert f"one row in {cost['predict_ms_per_row']:.3g} ms" in summary_markdown(result)
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri)
    card = Path(client.download_artifacts(result.run_id, "model_card.md", str(tmp_path)))
    text = card.read_text()
    assert "## Inference cost" in text and f"{cost['predict_ms_per_row']:.3g} ms for one row" in text
    page = Path(client.download_artifacts(result.run_id, "report.html", str(tmp_path))).read_text()
    assert "1-row ms" in page and f'<td class="n">{cost["predict_ms_per_row"]:.3g}</td>' in page


def test_the_error_analysis_is_logged_and_its_weakest_cohorts_named(trained, tmp_path):
    from pathlib import Path

    config, result = trained
    client = MlflowClient(tracking_uri=config.resolved_tracking_uri,
                          registry_uri=config.resolved_tracking_uri)
    folder = Path(client.download_artifacts(result.run_id, "", str(tmp_path)))
    analysis = json.loads((folder / "error_analysis.json").read_text())
    importance = json.loads((folder / "feature_importance.json").read_text())
    strongest = sorted(importance, key=importance.get, reverse=True)[:4]
    assert analysis["metric"] == "AUC_weighted" and analysis["basis"] == "test"
    assert {c["column"] for c in analysis["cohorts"]} <= set(strongest)
    assert analysis["cohorts"] and all(c["rows"] >= 30 for c in analysis["cohorts"])
    # the test set's 200 rows, AUC over them as the run's test metric
    assert analysis["overall"] == pytest.approx(result.test_metrics["AUC_weighted"])
    assert (folder / "charts" / "error_analysis.png").exists()
    card = (folder / "model_card.md").read_text()
    page = (folder / "report.html").read_text()
    assert "## Weakest cohorts" in card and "<h2>Weakest cohorts</h2>" in page
    for cohort in analysis["weakest"]:
        assert cohort["score"] < analysis["overall"]
        assert f"| {cohort['column']} | {cohort['value']} | {cohort['rows']} |" in card
