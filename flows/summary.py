"""What a training run's Prefect page shows: the summary (the model, the registry's decision, links
to MLflow, the time per phase), the full leaderboard with the final model as its first row, and
the guardrail report. Plain text and rows from a TrainResult: flows.ui publishes them."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import quote

from tasks.final.choice import STACK

if TYPE_CHECKING:
    from flows.result import TrainResult

__all__ = ["summary_markdown", "leaderboard_rows", "leaderboard_lines", "guardrail_rows",
           "significant", "mlflow_links", "mlflow_ui", "mlflow_run_url", "MLFLOW_UI_VARIABLE"]

MLFLOW_UI_VARIABLE = "AUTOML_MLFLOW_UI_URL"
TRAINING_VIEW = "workflowType=machine_learning"
FINAL = "final"  # the leaderboard's rank of the model that was registered


def significant(value: object, digits: int = 4) -> str:
    """A score as people read it: 4 significant digits (0.8452, 4.301e+04), '-' when missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def mlflow_ui(tracking_uri: str) -> str | None:
    """Where MLflow's pages for this store are: the tracking server itself, or for an embedded
    store the UI that serves it, named by AUTOML_MLFLOW_UI_URL (`make deploy` sets it)."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    served = os.environ.get(MLFLOW_UI_VARIABLE, "").strip()
    return served.rstrip("/") or None


def mlflow_run_url(base: str, experiment_id: str, run_id: str) -> str:
    """A run's page in MLflow's model-training view (not under the GenAI evaluations)."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"


def mlflow_links(result: TrainResult) -> dict[str, str]:
    """Where the run and the model version open in MLflow's UI: the run's page, the
    experiment's runs view (not the GenAI overview an experiment opens on by default) and the
    model version. An embedded store nobody serves has no pages: the command that serves it."""
    base = mlflow_ui(result.tracking_uri)
    if base is None:
        return {"store": f"`mlflow ui --backend-store-uri {result.tracking_uri}` serves it"}
    links = {"model version": f"{base}/#/models/{quote(result.registered_model_name)}"
                              f"/versions/{result.model_version}"}
    if result.experiment_id:
        experiment = f"{base}/#/experiments/{result.experiment_id}"
        links = {"run": mlflow_run_url(base, result.experiment_id, result.run_id),
                 "experiment": f"{experiment}?{TRAINING_VIEW}", **links}
    return links


def _decision(result: TrainResult) -> str:
    version = f"version {result.model_version} of `{result.registered_model_name}`"
    decision = result.registry
    if not decision:
        return f"Registered as {version}."
    held = f"**@{', @'.join(result.aliases)}**" if result.aliases else "no alias"
    return f"Registered as {version}, which holds {held}: {decision['reason']}."


def summary_markdown(result: TrainResult) -> str:
    links = "\n".join(
        f"- {name}: {target if name == 'store' else f'[{target}]({target})'}"
        for name, target in mlflow_links(result).items())
    phases = "\n".join(f"| {name} | {seconds:.1f} |"
                       for name, seconds in result.phase_seconds.items())
    metrics = "\n".join(f"| {name} | {significant(value)} |"
                        for name, value in sorted(result.metrics.items()))
    test = ""
    if result.test_metrics:
        scores = sorted(result.test_metrics.items())
        test = "\n\nTest: " + ", ".join(f"{k} = {significant(v)}" for k, v in scores)
    return (
        f"# {result.experiment_name}: {result.best_model}\n\n"
        f"{result.primary_metric} = **{significant(result.primary_metric_value)}** "
        f"({result.validation}) after {result.trials} trials ({result.failed_trials} failed, "
        f"{result.pruned_trials} pruned; stopped: {result.stop_reason}) in "
        f"{result.wall_seconds:.0f} s.{inference_sentence(result.inference)}\n\n"
        f"## Registry\n\n{_decision(result)}\n\n`{result.model_uri}`; pickle: "
        f"`{result.pkl_uri}`.\n\n"
        f"## MLflow\n\n{links}\n- run id: `{result.run_id}`\n\n"
        f"## Time (seconds)\n\n| phase | s |\n|---|---|\n{phases}\n| whole run | "
        f"{result.wall_seconds:.1f} |\n\n"
        f"## Validation metrics\n\n| metric | value |\n|---|---|\n{metrics}{test}\n"
    )


def leaderboard_rows(result: TrainResult) -> list[dict[str, str]]:
    """Every trial, best first, after the final model (an ensemble with its members and
    weights); scores to 4 significant digits, predict times (ms per 1,000 rows) to 3."""
    metric, speed = result.primary_metric, "predict_ms_per_1k_rows"
    row_ms, size = "predict_ms_per_row", "model_mb"
    cost = result.inference
    # A stack's members are weighed by its meta-learner, not by a weight of their own.
    stacked = result.best_family == STACK
    members = ", ".join(str(m["model"]) if stacked else f"{m['model']} x{float(m['weight']):.3g}"
                        for m in result.members)
    final = {"rank": FINAL, "trial": "-", "model": result.best_model,
             metric: significant(result.primary_metric_value), "fit_seconds": "-",
             speed: significant(cost.get(speed), 3), row_ms: significant(cost.get(row_ms), 3),
             size: _mb(cost.get("model_bytes")), "status": f"registered as {result.model_uri}",
             "members": members if len(result.members) > 1 else "-"}
    trials = [{"rank": str(row["rank"]), "trial": str(row["trial"]), "model": str(row["model"]),
               metric: significant(row.get(metric)), "fit_seconds": significant(row["fit_seconds"]),
               # Predicting the validation rows; '-' for a trial that did not predict them all.
               speed: significant(row.get(speed), 3), row_ms: significant(row.get(row_ms), 3),
               size: _mb(row.get("model_bytes")),
               "status": str(row["status"]), "members": "-"}
              for row in result.leaderboard]
    return [final, *trials]


def inference_sentence(cost: dict[str, float]) -> str:
    """The registered model's cost, as one sentence after a space; empty when not measured."""
    if not cost:
        return ""
    return (f" It predicts 1,000 rows in {cost['predict_ms_per_1k_rows']:.3g} ms and one row in "
            f"{cost['predict_ms_per_row']:.3g} ms, and pickles to "
            f"{cost['model_bytes'] / 1e6:.3g} MB.")


def _mb(size: object) -> str:
    return significant(size / 1e6, 3) if isinstance(size, (int, float)) and size else "-"


def leaderboard_lines(result: TrainResult, shown: int = 10) -> list[str]:
    """The leaderboard as a deployed run's log tells it (the command prints it as a table):
    the registered model, then the best `shown` trials and how many more there are."""
    rows = leaderboard_rows(result)
    metric = result.primary_metric
    lines = [f"leaderboard ({metric}, {result.validation}), {result.trials} trials:"]
    for row in rows[:shown + 1]:
        members = f" of {row['members']}" if row["members"] != "-" else ""
        fit = "" if row["fit_seconds"] == "-" else f", fit {row['fit_seconds']} s"
        lines.append(f"  {row['rank']:>5} {row['model']}{members} {metric}={row[metric]}"
                     f"{fit}, {row['status']}")
    if (hidden := len(rows) - 1 - shown) > 0:
        lines.append(f"  ... and {hidden} more (the run's leaderboard artifact lists every one)")
    return lines


def guardrail_rows(result: TrainResult) -> list[dict[str, str]]:
    """The data checks as Azure's guardrail report shows them: one row per check."""
    return [{k: str(v) for k, v in row.items()} for row in result.guardrails]
