"""What the training flow wires together: its input tables, its clock, its MLflow run, its search."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from tasks.charts import SearchTrace
from tasks.config import AutoMLConfig
from tasks.data_report import GuardrailReport
from tasks.errors import AutoMLError, StorageError
from tasks.features import featurization_enabled
from tasks.guardrails import Profile
from tasks.ingest import public_url, read_table
from tasks.metrics import Metric
from tasks.search import SearchLimits, SearchOutcome, run_search
from tasks.split import SearchData
from tasks.study import open_study
from tasks.tracking import Tracker
from tasks.trial import Candidate, TrialResult, TrialSettings, evaluate_candidate

__all__ = ["Tables", "read_tables", "Budget", "TrackedRun", "search"]

# Seconds kept back from the search for refit, logging and registration, at the least.
MIN_RESERVE_SECONDS = 5.0
RESERVE_FRACTION = 0.10


@dataclass(frozen=True)
class Tables:
    train: pd.DataFrame
    validation: pd.DataFrame | None
    test: pd.DataFrame | None

    @staticmethod
    def transient(_task: Any, _run: Any, state: Any) -> bool:
        """Retry storage hiccups, never the user's own mistakes."""
        return isinstance(state.data, StorageError) or not isinstance(state.data, AutoMLError)


def read_tables(config: AutoMLConfig) -> Tables:
    options = config.storage_options

    def optional(url: str | None, what: str) -> pd.DataFrame | None:
        return None if url is None else read_table(url, what=what, storage_options=options)

    return Tables(
        read_table(config.training_data, what="training data", storage_options=options),
        optional(config.validation_data, "validation data"),
        optional(config.test_data, "test data"),
    )


@dataclass(frozen=True)
class Budget:
    """experiment_timeout_minutes covers the whole flow: the search stops early enough to refit."""

    minutes: float
    started: float

    @property
    def end(self) -> float:
        return self.started + self.minutes * 60

    @property
    def search_deadline(self) -> float:
        reserve = max(MIN_RESERVE_SECONDS, RESERVE_FRACTION * self.minutes * 60)
        return self.end - reserve

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def allows_ensemble(self, outcome: SearchOutcome, n_folds: int, rounds: int) -> bool:
        """Refitting an ensemble costs about the members' fit times; skip it if that won't fit."""
        top = [r.fit_seconds / n_folds for r in outcome.results if r.ok][:rounds]
        return time.monotonic() + 1.5 * sum(top) < self.end


class TrackedRun:
    """The MLflow parent run of one flow run: opened after the checks pass, closed as it ended."""

    def __init__(
        self, config: AutoMLConfig, profile: Profile, data: SearchData, report: GuardrailReport,
        training: pd.DataFrame | None = None,
    ) -> None:
        self.config, self.profile, self.data, self.report = config, profile, data, report
        self.training = training  # the table as read, logged as the run's input dataset
        cores = os.cpu_count() or 1
        n_jobs = config.max_cores_per_iteration
        if n_jobs == -1:
            n_jobs = max(1, cores // config.max_concurrent_iterations)
        self.settings = TrialSettings(
            profile.roles, config.random_state, n_jobs, featurize=featurization_enabled(config)
        )
        self.tracker: Tracker | None = None
        self.run_id = ""
        self.params: dict[str, Any] = {}  # as logged: no credentials
        self.digest: str | None = None  # of the training table
        self.started = time.monotonic()
        self._best: float | None = None
        self._recorded: list[TrialResult] = []
        self._elapsed: list[float] = []

    def __enter__(self) -> TrackedRun:
        config = self.config
        artifacts = config.workdir_path / "artifacts" if config.embedded_tracking else None
        config.workdir_path.mkdir(parents=True, exist_ok=True)
        self.tracker = Tracker(config.resolved_tracking_uri, config.experiment_name, artifacts)
        # Credentials never reach MLflow: no storage_options, no user:password@ in URLs.
        params = config.model_dump(exclude_none=True, exclude={"storage_options"})
        for name in ("training_data", "validation_data", "test_data"):
            if name in params:
                params[name] = public_url(params[name])
        params.update(task=self.profile.task, primary_metric=self.profile.metric.name,
                      validation_scheme=self.data.scheme, n_rows=len(self.data.X))
        self.run_id = self.tracker.start(
            run_name=f"{config.experiment_name}-{time.strftime('%Y%m%d-%H%M%S')}",
            params=params,
            tags={"task": self.profile.task, "automl.training_data": params["training_data"]},
        )
        self.params = params
        self.started = time.monotonic()
        self.tracker.log_context(self.run_id, params)
        if self.training is not None:
            self.digest = self.tracker.log_training_data(
                self.run_id, self.training, params["training_data"]
            )
        self.tracker.log_report(self.run_id, self.report.to_dicts(), self.report.to_text())
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self.tracker is not None:
            self.tracker.finish(self.run_id, ok=exc_type is None)

    def record(self, result: TrialResult) -> str:
        """Log one trial as a child run. The parent's best-so-far curve gets a point when the
        best improves (and one at the last trial, in finish_curve): an extra write per trial
        would only repeat the value."""
        assert self.tracker is not None
        metric = self.profile.metric
        score = result.metrics.get(metric.name) if result.ok else None
        improved = score is not None and (self._best is None or metric.better(score, self._best))
        if improved:
            self._best = score
        self._recorded.append(result)
        self._elapsed.append(time.monotonic() - self.started)
        best = {self.curve_name: score} if improved else {}
        return self.tracker.log_trial(self.run_id, result, best)

    @property
    def curve_name(self) -> str:
        return f"best_so_far_{self.profile.metric.name}"

    def finish_curve(self) -> None:
        """The curve's last point, at the last trial number, so it spans the whole search."""
        assert self.tracker is not None
        if self._best is not None and self._recorded:
            last = max(r.candidate.number for r in self._recorded)
            self.tracker.log_outcome(self.run_id, {self.curve_name: self._best}, {}, step=last)

    @property
    def trace(self) -> SearchTrace:
        return SearchTrace(tuple(self._recorded), tuple(self._elapsed), tuple(self.profile.families))


def leaderboard(outcome: SearchOutcome, metric: Metric, top: int | None = None) -> list[dict[str, Any]]:
    """Successful trials best first, then the failed ones."""
    ranked = outcome.ranked(metric)
    ranked_ids = {id(r) for r in ranked}
    failed = [r for r in outcome.results if id(r) not in ranked_ids]
    rows = [
        {
            "rank": rank,
            "trial": r.candidate.number,
            "model": r.candidate.label,
            metric.name: r.metrics.get(metric.name),
            "fit_seconds": round(r.fit_seconds, 2),
            "status": "ok" if r.ok else "failed",
        }
        for rank, r in enumerate(ranked + failed, start=1)
    ]
    return rows[:top] if top else rows


@task(name="trial", cache_policy=NO_CACHE)
def _trial(candidate: Candidate, data: SearchData, settings: TrialSettings) -> TrialResult:
    return evaluate_candidate(candidate, data, settings)


def search(
    config: AutoMLConfig, profile: Profile, data: SearchData, run: TrackedRun, budget: Budget
) -> SearchOutcome:
    """Each trial is a Prefect task on the flow's task runner; a batch runs at once."""
    study = open_study(
        name=f"{config.experiment_name}-{run.run_id}",
        workdir=config.workdir_path,
        maximize=profile.metric.greater_is_better,
        seed=config.random_state,
        families=list(profile.families),
    )
    durations: list[float] = []
    limit = config.iteration_timeout_minutes

    def evaluate(batch: list[Candidate]) -> list[TrialResult]:
        started = time.monotonic()
        futures = [
            _trial.with_options(task_run_name=c.label).submit(c, quote(data), run.settings)
            for c in batch
        ]
        results = [f.result() for f in futures]
        durations.append((time.monotonic() - started))
        if limit is not None:
            results = [_over_time(r, limit) for r in results]
        return results

    deadline = budget.search_deadline
    limits = SearchLimits(
        iterations=config.iterations,
        deadline=lambda: deadline - (statistics.median(durations[-5:]) if durations else 0.0),
        batch_size=config.max_concurrent_iterations,
        exit_score=config.experiment_exit_score,
        patience=config.early_stopping_patience if config.enable_early_stopping else None,
    )
    return run_search(study, list(profile.families), profile.metric, limits, evaluate, run.record)


def _over_time(result: TrialResult, minutes: float) -> TrialResult:
    # Threads cannot be stopped: a trial that ran past its limit is recorded as failed.
    seconds = result.fit_seconds + result.predict_seconds
    if seconds <= minutes * 60:
        return result
    return TrialResult(result.candidate, False, fit_seconds=result.fit_seconds,
                       error=f"timeout: ran {seconds:.1f}s, iteration_timeout_minutes={minutes}")
