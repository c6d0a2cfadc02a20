"""The search step: the candidate loop (tasks.search.loop) driving trials on the worker pool,
each finished trial recorded as it comes: its MLflow child run, its predictions (for a resumed
run's ensemble), the progress bar, and the cut-off of the trials still running."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from flows.summary import mlflow_run_url, mlflow_ui, significant
from flows.ui import TrialProgress, link_trial_run
from flows.workers import CutOff, TaskEvaluator
from tasks.registry.publish import curve_name
from tasks.search.loop import SearchLimits, ordered_lag, prunable, run_search
from tasks.search.memory import MemoryGate
from tasks.search.screening import screening_rungs
from tasks.search.state import SearchState
from tasks.search.study import (
    mark_search_stopped,
    open_storage,
    open_study,
    predictions_folder,
    save_predictions,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import optuna
    from prefect.futures import PrefectFuture

    from flows.workers import TrialWorkers
    from tasks.budget import Budget
    from tasks.config import AutoMLConfig
    from tasks.data.profile import Profile
    from tasks.data.sets import SearchData
    from tasks.registry.run import RunSpec, TrackedRun
    from tasks.search.candidates import TrialResult
    from tasks.search.outcome import SearchOutcome
    from tasks.types import Params

__all__ = ["SearchSettings", "search_trials", "RunRecords", "PendingRun"]

log = logging.getLogger("automl")


class RunRecords(Protocol):
    """What the search needs of the training run's records: its study at once, the MLflow run
    (tracked) only to log the first finished trial."""

    @property
    def history(self) -> tuple[TrialResult, ...]: ...

    @property
    def retry(self) -> tuple[Params, ...]: ...

    @property
    def stopped(self) -> str | None: ...

    @property
    def predictions_folder(self) -> Path: ...

    def study(self) -> optuna.Study: ...

    def tracked(self) -> TrackedRun: ...


@dataclass(frozen=True)
class PendingRun:
    """A new run whose MLflow parent run is being opened (the track step, submitted to the
    flow's task runner) while the search starts on its Optuna study: MLflow's start-up (its
    imports, a new store's schema, the run's inputs: 1.5-3 s) overlaps the first trials."""

    spec: RunSpec
    study_name: str
    maximize: bool
    future: PrefectFuture[TrackedRun]
    history: tuple[TrialResult, ...] = ()
    retry: tuple[Params, ...] = ()
    stopped: str | None = None

    @property
    def predictions_folder(self) -> Path:
        return predictions_folder(self.spec.workdir, self.study_name)

    def study(self) -> optuna.Study:
        spec = self.spec
        spec.workdir.mkdir(parents=True, exist_ok=True)
        return open_study(name=self.study_name, workdir=spec.workdir,
                          storage=open_storage(spec.optuna_storage, spec.workdir),
                          maximize=self.maximize, seed=spec.seed, sampler=spec.sampler)

    def tracked(self) -> TrackedRun:
        return self.future.result()


@dataclass(frozen=True)
class SearchSettings:
    """What the search needs of the configuration."""

    experiment: str
    iterations: int
    concurrency: int
    exit_score: float | None = None
    patience: int | None = 20  # None: no early stopping
    pruning: bool = True
    timeout_minutes: float | None = None  # of one trial
    memory_mb: float | None = None  # of one trial's process
    lag: int | None = None  # results told in ask order, this many asks late (SearchLimits)
    run_memory_mb: float | None = None  # of the whole run

    @classmethod
    def of(cls, config: AutoMLConfig) -> SearchSettings:
        lag = ordered_lag(config.concurrency) if config.deterministic else None
        return cls(config.experiment_name, config.iterations, config.concurrency,
                   config.experiment_exit_score,
                   config.early_stopping_patience if config.enable_early_stopping else None,
                   config.enable_pruning, config.iteration_timeout_minutes,
                   config.max_memory_mb_per_iteration, lag, config.max_memory_mb)


def search_trials(settings: SearchSettings, profile: Profile, data: SearchData, run: RunRecords,
                  budget: Budget, workers: TrialWorkers,
                  warm_start: Sequence[Params] = ()) -> SearchOutcome:
    """Up to `concurrency` trials at once, as Prefect tasks on the flow's task runner. The first
    configurations tried are a resumed run's interrupted ones, then `warm_start`."""
    assert workers.payload is not None
    state = SearchState(profile.metric, profile.families, run.history)
    if run.stopped is not None and state.best is not None:
        # A resumed run whose search had ended (it failed while registering): on from its trials.
        log.info("the resumed run's search had ended (%s): its %d trials go on to the ensemble",
                 run.stopped, len(state.results))
        workers.close()
        return state.outcome(run.stopped)
    workers.searching()
    n_folds = len(data.folds)
    progress = TrialProgress(settings.experiment, settings.iterations, budget.started,
                             budget.search_deadline)
    cut_off = CutOff(workers.cut_off)

    def record(result: TrialResult, state: SearchState) -> str:
        save_predictions(run.predictions_folder, result)
        score = state.best_score if state.best is result else None
        best = {} if score is None else {curve_name(profile.metric): score}
        tracked = run.tracked()  # the first trial's record waits for the MLflow run
        tracker = tracked.tracker
        run_id = tracker.log_trial(tracked.run_id, result, best, step=len(state.results) - 1)
        if (ui := mlflow_ui(tracker.tracking_uri)) is not None:
            link_trial_run(evaluator.task_runs.get(result.candidate.number),
                           mlflow_run_url(ui, tracker.experiment_id, run_id),
                           result.candidate.label)
        progress.update(result.candidate.label, None if state.best is None else
                        f"{state.best.candidate.label} ({profile.metric.name} "
                        f"{significant(state.best_score)})")
        if state.best is not None:
            # Trials started before any model existed may run to the budget's end; now there is
            # one to refit, the running trials stop at the search's deadline instead.
            cut_off.follow(budget.trials_stop(state.leaders, n_folds))
        return run_id

    limits = SearchLimits(
        iterations=settings.iterations,
        deadline=lambda: budget.deadline_after(state.leaders, n_folds),
        batch_size=settings.concurrency,
        exit_score=settings.exit_score,
        patience=settings.patience,
        prune=settings.pruning and prunable([len(valid) for _, valid in data.folds]),
        lag=settings.lag,
        rungs=screening_rungs([len(fit) for fit, _ in data.folds]),
        fit_rows=len(data.folds[0][0]),
        clock=workers.settings.fit_seconds,
        memory=None if settings.run_memory_mb is None else MemoryGate(
            settings.run_memory_mb, len(data.folds[0][0])),
    )
    evaluator = TaskEvaluator(workers.payload, lambda: budget.trials_stop(state.leaders, n_folds),
                              settings.timeout_minutes, settings.memory_mb, profile.metric.name,
                              settings.run_memory_mb)
    try:
        study = run.study()
        outcome = run_search(study, state, limits, evaluator, record, [*run.retry, *warm_start])
        mark_search_stopped(study, outcome.stop_reason)
        return outcome
    finally:
        progress.finish()
        workers.close()  # now, not after the refit: idle workers hold the data and the libraries
