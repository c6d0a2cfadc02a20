"""What the training flow wires together: its input tables, its clock, its MLflow run (the search
is flows/trials.py)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from tasks.registry.search_charts import SearchTrace
from tasks.config import AutoMLConfig
from tasks.data.credentials import storage_options
from tasks.data.guardrails import GuardrailReport
from tasks.budget import Affordable
from tasks.errors import AutoMLError, ConfigError, StorageError
from tasks.data.profile import Profile
from tasks.data.storage import public_url, read_table
from tasks.metrics import Metric
from tasks.search.loop import SearchOutcome
from tasks.data.sets import SearchData
from tasks.search.study import find_unfinished, open_storage, open_study, restore_trials
from tasks.registry.tracking import Tracker
from tasks.search.candidates import TrialResult, TrialSettings

__all__ = ["Tables", "read_tables", "Budget", "finish_seconds", "refit_seconds", "Phases",
           "TrackedRun", "leaderboard"]

log = logging.getLogger("automl")

# Seconds kept back from the search for refit, logging and registration, at the least.
MIN_RESERVE_SECONDS = 5.0
RESERVE_FRACTION = 0.10
REGISTER_SECONDS = 3.0  # saving, logging and registering the model (measured ~1-2 s on SQLite)
SAVE_SECONDS_PER_MB = 0.01  # and per MB of the pickled model (finish_seconds)
# The search stops in time to refit this many of its best trials side by side: the final model is
# often an ensemble of them, and one too slow to refit is cut down to what fits (choose_model).
# Three left diamonds 14 s of search for a 60 s budget (two slow forests among them); two keep the
# best pair's ensemble without starving the search.
LEADERS = 2
# Refit estimates are multiplied by this: measured refits ran 0.9-1.1x the estimate.
REFIT_MARGIN = 1.25


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
    # Resolved here, inside the ingest task, so a Secret block's values never become a parameter.
    options = storage_options(config.storage_options, config.storage_secret)

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
    shutdown: float = 0.0  # seconds the caller needs after the flow returns, inside the budget

    @property
    def end(self) -> float:
        return self.started + self.minutes * 60 - self.shutdown

    @property
    def search_deadline(self) -> float:
        reserve = max(MIN_RESERVE_SECONDS, RESERVE_FRACTION * self.minutes * 60)
        return self.end - reserve

    def deadline_after(self, leaders: Sequence[TrialResult], n_folds: int) -> float:
        """When the search must stop, so the final model can still be refit on all rows: the
        best trials so far (an ensemble's likely members), refit side by side."""
        if not leaders:
            return self.search_deadline
        return min(self.search_deadline, self.end - finish_seconds(leaders, n_folds))

    def affords(self, n_folds: int) -> Affordable:
        """Whether refitting these members on all rows and registering them, from now, still
        ends within the budget."""
        return lambda members: time.monotonic() + finish_seconds(members, n_folds) < self.end

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def finish_seconds(members: Sequence[TrialResult], n_folds: int) -> float:
    """What the final model of these members costs after the search: its refit (with a margin)
    and its registration, which writes the model twice (model.pkl and the MLflow model): about
    10 ms a MB (a 517 MB ensemble of letter: 0.8 s to pickle, 1.3 s a copy)."""
    megabytes = sum(m.model_bytes for m in members) / 1e6
    return (REFIT_MARGIN * refit_seconds(members, n_folds) + REGISTER_SECONDS
            + SAVE_SECONDS_PER_MB * megabytes)


def refit_seconds(members: Sequence[TrialResult], n_folds: int) -> float:
    """About how long refitting these trials' models on all rows takes, side by side on the cores
    (estimators._fit_members): a trial fitted n_folds models on (n_folds-1)/n_folds of the rows
    each, so one model on all of them costs its fit time / (n_folds-1); a holdout trial fitted one
    on 90% of them."""
    each = [m.fit_seconds / (n_folds - 1) if n_folds > 1 else m.fit_seconds / 0.9 for m in members]
    return max(max(each, default=0.0), sum(each) / (os.cpu_count() or 1))


class Phases:
    """Seconds spent in each step of the flow after the checks, for the log and the result."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - started, 2)

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.seconds.items())


class TrackedRun:
    """The records of one training run: the MLflow parent run (opened after the checks pass,
    closed as it ended) and the Optuna study holding the search's state.

    With `resume`, both are those of the experiment's newest run that never registered a model:
    its finished trials count, its interrupted ones are tried again.
    """

    def __init__(
        self, config: AutoMLConfig, profile: Profile, data: SearchData, report: GuardrailReport,
        settings: TrialSettings, training: pd.DataFrame | None = None,
    ) -> None:
        self.config, self.profile, self.data, self.report = config, profile, data, report
        self.training = training  # the table as read, logged as the run's input dataset
        # The refit runs alone, after the search: it may use every core.
        self.refit_settings = replace(settings, n_jobs=os.cpu_count() or 1)
        self.tracker: Tracker | None = None
        self.run_id = ""
        self.storage = open_storage(config.optuna_storage, config.workdir_path)
        self.study_name = ""
        self.history: list[TrialResult] = []  # finished trials of the run being resumed
        self.retry: list[dict[str, Any]] = []  # parameters of the trials it was running
        self.params: dict[str, Any] = {}  # as logged: no credentials
        self.digest: str | None = None  # of the training table
        self.started = time.monotonic()
        self._best: float | None = None
        self.best: TrialResult | None = None  # the search's best so far
        self.leaders: list[TrialResult] = []  # the best few: the refit the search plans for
        self._recorded: list[TrialResult] = []
        self._elapsed: list[float] = []
        self.warm_start: list[dict[str, Any]] = []  # tried first too: e.g. a previous study's best

    @property
    def predictions_folder(self) -> Any:
        return self.config.workdir_path / "trials" / self.study_name

    def __enter__(self) -> TrackedRun:
        config = self.config
        artifacts = config.workdir_path / "artifacts" if config.embedded_tracking else None
        config.workdir_path.mkdir(parents=True, exist_ok=True)
        self.tracker = Tracker(config.resolved_tracking_uri, config.experiment_name, artifacts)
        resumed = find_unfinished(self.storage, config.experiment_name) if config.resume else None
        if resumed is not None:
            self._reopen(resumed)
        else:
            if config.resume:
                log.info("nothing to resume in experiment %r: starting a new run",
                         config.experiment_name)
            self._start()
        return self

    def _start(self) -> None:
        assert self.tracker is not None
        config = self.config
        # Credentials never reach MLflow: no storage_options, no user:password@ in URLs.
        params = config.model_dump(exclude_none=True, exclude={"storage_options", "resume"})
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
        self.study_name = f"{config.experiment_name}-{self.run_id}"

    def _reopen(self, study_name: str) -> None:
        assert self.tracker is not None
        study = self._open_study(study_name)
        if study.user_attrs.get("data_digest") != self.data.split_digest():
            raise ConfigError(
                f"--resume found experiment {self.config.experiment_name!r}'s interrupted run, "
                "but this run's data or split differ from it; use the same data and validation "
                "settings, or drop --resume to start a new run"
            )
        self.study_name = study_name
        self.run_id = study.user_attrs["mlflow_run_id"]
        self.history, interrupted = restore_trials(study, self.predictions_folder)
        self.retry = [dict(t.params) for t in interrupted]
        # A trial logged to MLflow but not told to Optuna before the crash runs again: drop its
        # MLflow run, so no trial has two.
        self.tracker.reopen(self.run_id, [t.number for t in interrupted])
        parent = self.tracker.client.get_run(self.run_id).data
        self.params, self.digest = dict(parent.params), parent.tags.get("automl.data_digest")
        for result in self.history:
            self._note(result)
        log.info("resuming experiment %r: %d finished trials kept, %d interrupted ones queued again",
                 self.config.experiment_name, len(self.history), len(interrupted))

    def _open_study(self, name: str) -> Any:
        return open_study(
            name=name, workdir=self.config.workdir_path, storage=self.storage,
            maximize=self.profile.metric.greater_is_better, seed=self.config.random_state,
            sampler=self.config.sampler,
            attrs={"experiment": self.config.experiment_name, "mlflow_run_id": self.run_id,
                   "data_digest": self.data.split_digest()},
        )

    def study(self) -> Any:
        return self._open_study(self.study_name)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self.tracker is not None:
            self.tracker.finish(self.run_id, ok=exc_type is None)

    def record(self, result: TrialResult) -> str:
        """Log one trial as a child run. The parent's best-so-far curve gets a point when the
        best improves (and one at the last trial, in finish_curve): an extra write per trial
        would only repeat the value."""
        assert self.tracker is not None
        if result.predictions is not None:  # kept for the ensemble of a resumed run
            self.predictions_folder.mkdir(parents=True, exist_ok=True)
            np.save(self.predictions_folder / f"{result.candidate.number}.npy", result.predictions)
        improved = self._note(result)
        best = {self.curve_name: self._best} if improved and self._best is not None else {}
        return self.tracker.log_trial(self.run_id, result, best, step=len(self._recorded) - 1)

    def _note(self, result: TrialResult) -> bool:
        """Keep the trial for the charts; True when it is the best so far."""
        metric = self.profile.metric
        score = result.metrics.get(metric.name) if result.ok else None
        improved = score is not None and (self._best is None or metric.better(score, self._best))
        if improved:
            self._best, self.best = score, result
        if score is not None and result.duplicate_of is None:
            ranked = sorted([*self.leaders, result], key=lambda r: r.metrics[metric.name],
                            reverse=metric.greater_is_better)
            self.leaders = ranked[:LEADERS]
        self._recorded.append(result)
        self._elapsed.append(time.monotonic() - self.started)
        return improved

    @property
    def curve_name(self) -> str:
        return f"best_so_far_{self.profile.metric.name}"

    def finish_curve(self) -> None:
        """The curve's last point, at the last trial finished, so it spans the whole search."""
        assert self.tracker is not None
        if self._best is not None and self._recorded:
            last = len(self._recorded) - 1
            self.tracker.log_outcome(self.run_id, {self.curve_name: self._best}, {}, step=last)

    @property
    def trace(self) -> SearchTrace:
        return SearchTrace(tuple(self._recorded), tuple(self._elapsed), tuple(self.profile.families))

    def mark_registered(self, version: str) -> None:
        """Marks the study done: a later --resume of this experiment starts afresh."""
        self.study().set_user_attr("registered_version", str(version))


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
            "status": r.status,
        }
        for rank, r in enumerate(ranked + failed, start=1)
    ]
    return rows[:top] if top else rows
