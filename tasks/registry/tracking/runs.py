"""The runs of a training: the parent run's lifecycle (started, reopened, finished) and what is
logged on it, and a child run per trial."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from mlflow.entities import Metric, RunStatus

from tasks.registry.environment import environment
from tasks.registry.records import ParentRun
from tasks.registry.tracking.client import Connected, metrics, params, tags
from tasks.registry.tracking.lineage import log_training_data

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from tasks.search.candidates import TrialResult
    from tasks.types import Json

__all__ = ["RunLog", "NOTE_TAG"]

NOTE_TAG = "mlflow.note.content"


class RunLog(Connected):
    """The runs of one experiment (created when it does not exist yet)."""

    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: Path | None) -> None:
        super().__init__(tracking_uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            location = artifact_root.as_uri() if artifact_root else None
            self.experiment_id: str = self.client.create_experiment(experiment_name, location)
        else:
            self.experiment_id = experiment.experiment_id

    def start_parent(self, run_name: str, params: Json, tags: dict[str, str], *,
                     training: pd.DataFrame | None = None, source: str = "",
                     checks: list[dict[str, str]] | None = None, report: str = "") -> ParentRun:
        """Open a training run: its parameters, the configuration and software as artifacts,
        the training table's lineage, the guardrail report."""
        run_id = self.start(run_name, params, tags)
        try:
            self.log_context(run_id, params)
            digest = None if training is None else log_training_data(self.client, run_id,
                                                                     training, source)
            if checks is not None:
                self.log_report(run_id, checks, report)
        except BaseException:
            self.finish(run_id, ok=False)  # never left RUNNING: a retry opens another
            raise
        return ParentRun(run_id, dict(params), digest)

    def reopen_parent(self, run_id: str, interrupted: list[int]) -> ParentRun:
        """An interrupted run running again, without the child runs of trials to be re-run."""
        self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        self.client.set_tag(run_id, "resumed", "true")
        if interrupted:
            numbers = {str(n) for n in interrupted}
            children = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                max_results=50_000,
            )
            for child in children:
                if child.data.tags.get("trial_number") in numbers:
                    self.client.delete_run(child.info.run_id)
        parent = self.client.get_run(run_id).data
        return ParentRun(run_id, dict(parent.params), parent.tags.get("automl.data_digest"))

    def start(self, run_name: str, values: Json, run_tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=run_tags)
        run_id: str = run.info.run_id
        self.client.log_batch(run_id, params=params(values))
        return run_id

    def finish(self, run_id: str, ok: bool) -> None:
        status = RunStatus.FINISHED if ok else RunStatus.FAILED
        self.client.set_terminated(run_id, RunStatus.to_string(status))

    def log_context(self, run_id: str, config: Json) -> None:
        """The configuration as given (credentials already removed) and the software it ran on."""
        self.client.log_dict(run_id, config, "config.json")
        self.client.log_dict(run_id, environment(), "environment.json")

    def log_report(self, run_id: str, checks: list[dict[str, str]], text: str) -> None:
        self.client.log_dict(run_id, {"checks": checks}, "guardrails.json")
        self.client.log_text(run_id, text + "\n", "guardrails.txt")
        alerted = [c["name"] for c in checks if c["status"] == "alerted"]
        self.client.set_tag(run_id, "guardrails_alerted", ", ".join(alerted) or "none")

    def log_trial(
        self, parent_id: str, result: TrialResult, best: dict[str, float], step: int = 0
    ) -> str:
        """One child run (three calls: create, one batch, terminate), and the parent's
        best-so-far point when there is one (metric name -> value at `step`: how many trials had
        finished before this one, as trials running side by side finish out of number order)."""
        c = result.candidate
        run = self.client.create_run(self.experiment_id, run_name=c.label,
                                     start_time=_ms(result.started_at),
                                     tags=_trial_tags(parent_id, result))
        run_id: str = run.info.run_id
        values = {**result.metrics, "fit_seconds": result.fit_seconds,
                  "predict_seconds": result.predict_seconds}
        if (speed := result.predict_ms_per_1k_rows) is not None:
            values["predict_ms_per_1k_rows"] = speed
        if result.predict_ms_per_row is not None:
            values["predict_ms_per_row"] = result.predict_ms_per_row
        if result.model_bytes:
            values["model_size_bytes"] = result.model_bytes
        if result.peak_memory_mb:
            values["peak_memory_mb"] = result.peak_memory_mb
        # The primary metric on each fold it ran, step = fold: a pruned trial has only these.
        now = int(time.time() * 1000)
        folds = [Metric("fold_score", float(v), now, step)
                 for step, v in enumerate(result.fold_scores) if np.isfinite(v)]
        self.client.log_batch(run_id, metrics=metrics(values, now=now) + folds, params=params(
            {"family": c.family, **c.params,
             **{f"refit_{k}": v for k, v in result.refit_params.items()}}))
        # A pruned trial ran as it should and was stopped on purpose: finished, tagged "pruned".
        status = RunStatus.FAILED if result.status == "failed" else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status),
                                   end_time=_ms(result.ended_at))
        if best:
            self.client.log_batch(parent_id, metrics=metrics(best, step, now))
        return run_id

    def log_summary(self, run_id: str, values: dict[str, float], run_tags: dict[str, str],
                    leaderboard: pd.DataFrame) -> None:
        self.log_outcome(run_id, values, run_tags)
        # log_table appends to a table already there: a retried step must not repeat the rows.
        if not any(f.path == "leaderboard.json" for f in self.client.list_artifacts(run_id)):
            self.client.log_table(run_id, data=leaderboard, artifact_file="leaderboard.json")

    def log_outcome(self, run_id: str, values: dict[str, float], run_tags: dict[str, str],
                    step: int = 0) -> None:
        self.client.log_batch(run_id, metrics=metrics(values, step), tags=tags(run_tags))

    def log_folder(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def describe_run(self, run_id: str, text: str) -> None:
        """The run page's Description (MLflow keeps it in this tag)."""
        self.client.set_tag(run_id, NOTE_TAG, text)


def _trial_tags(parent_id: str, result: TrialResult) -> dict[str, str]:
    c = result.candidate
    found = {"mlflow.parentRunId": parent_id, "family": c.family, "trial_number": str(c.number),
             "status": result.status}
    if result.worker:
        found["worker"] = result.worker
    if result.duplicate_of is not None:
        found["duplicate_of"] = str(result.duplicate_of)
    if result.error:
        found["error"] = result.error[:5000]
        found["failure_reason"] = result.reason or "error"
    return found


def _ms(epoch_seconds: float) -> int | None:
    """MLflow's milliseconds; None (MLflow's now) when the moment is unknown."""
    return int(epoch_seconds * 1000) if epoch_seconds else None
