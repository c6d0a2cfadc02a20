"""The search as Prefect tasks: the trial worker pool, and the candidate loop driving it."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from flows.run import REGISTER_SECONDS, Budget, TrackedRun
from flows.ui import TrialProgress
from tasks.config import AutoMLConfig
from tasks.data.profile import Profile
from tasks.search.loop import SearchLimits, SearchOutcome, run_search
from tasks.data.sets import SearchData
from tasks.search.candidates import Candidate, TrialResult
from flows.steps import trial_settings
from tasks.search.workers import Payload, TrialLimits, close_pools, cut_off_pools, pool_for

__all__ = ["TrialWorkers", "CutOff", "search"]

log = logging.getLogger("automl")

# Pruning compares a trial's score on a fold with the others': on a fold of fewer rows that score
# is mostly noise (blood_transfusion's 120-row folds pruned a kernel SVM that ranked among the
# best), and trials on data that small are cheap anyway, so there is little time to save.
PRUNE_MIN_ROWS = 500


class TrialWorkers:
    """The run's trial workers: the search data written once for them, and, on the local
    runner, their processes started at once, so loading the model libraries and the data
    overlaps the checks and the MLflow set-up that come before the search (about 2 s).
    Stopped when the search ends, or when the run fails before it."""

    def __init__(self, config: AutoMLConfig, profile: Profile, data: SearchData) -> None:
        self.config, self.data = config, data
        self.settings = trial_settings(config, profile, data)
        self.payload: Payload | None = None

    def __enter__(self) -> TrialWorkers:
        folder = self.config.workdir_path / "cache"
        name = f"{self.config.experiment_name}-{uuid.uuid4().hex[:12]}"
        self.payload = Payload.write(self.data, self.settings, folder, name)
        if self.config.task_runner == "local":
            pool_for(self.payload).warm(self.config.concurrency)
        return self

    def close(self) -> None:
        """Stop every trial process of the run (each Dask worker keeps its own pool)."""
        if self.payload is None:
            return
        payload, self.payload = self.payload, None
        close_pools(payload)
        _on_dask_workers(self.config, close_pools, payload)
        os.unlink(payload.path)

    def __exit__(self, *_: Any) -> None:
        self.close()

    def cut_off(self, at: float) -> None:
        """Running trials stop at epoch time `at`, sooner than the limits they started with."""
        assert self.payload is not None
        cut_off_pools(self.payload, at)
        _on_dask_workers(self.config, cut_off_pools, self.payload, at)


def _on_dask_workers(config: AutoMLConfig, function: Any, *args: Any) -> None:
    if config.task_runner != "dask":
        return
    try:
        from distributed import default_client

        default_client().run(function, *args)
    except Exception as exc:  # noqa: BLE001 - a cluster gone has no trials left to stop
        log.debug("could not reach the Dask workers' trial processes: %s", exc)


@task(name="trial", cache_policy=NO_CACHE)
def _trial(candidate: Candidate, payload: Payload, limits: TrialLimits) -> TrialResult:
    # Runs where the task runner puts it (a thread of the flow, a Dask worker); the trial itself
    # runs in that process's worker pool, where it can be stopped.
    return pool_for(payload).run(candidate, limits)


class _TaskEvaluator:
    """Trials as Prefect tasks on the flow's task runner, each limited in time and memory."""

    def __init__(self, config: AutoMLConfig, payload: Payload, stop_by: Any) -> None:
        self.config, self.payload, self.stop_by = config, payload, stop_by

    def limits(self) -> TrialLimits:
        left = self.stop_by() - time.monotonic()
        own = self.config.iteration_timeout_minutes
        if own is not None and own * 60 <= left:
            return TrialLimits(own * 60, self.config.max_memory_mb, "timeout")
        return TrialLimits(max(left, 1.0), self.config.max_memory_mb, "budget")

    def submit(self, candidate: Candidate) -> Any:
        return _trial.with_options(task_run_name=candidate.label).submit(
            candidate, self.payload, self.limits()
        )

    def first_done(self, handles: list[Any]) -> Any:
        return next(as_completed(handles))

    def result(self, handle: Any) -> TrialResult:
        return handle.result()


class CutOff:
    """When running trials are stopped: the search's deadline, passed on to the workers as it
    moves with the best trials' refit, later as well as earlier. Moved only earlier, trials
    started in the time a cheaper best trial gained were stopped at once (diamonds: 19 trials
    stopped after 0 s)."""

    def __init__(self, tell: Callable[[float], None]) -> None:
        self.tell, self.at = tell, float("inf")  # time.monotonic()

    def follow(self, deadline: float) -> None:
        if abs(deadline - self.at) > 1.0:
            self.at = deadline
            self.tell(time.time() + deadline - time.monotonic())  # an epoch time crosses processes


def search(
    config: AutoMLConfig, profile: Profile, data: SearchData, run: TrackedRun, budget: Budget,
    workers: TrialWorkers,
) -> SearchOutcome:
    """Up to max_concurrent_iterations trials at once, as Prefect tasks on the flow's runner."""
    assert workers.payload is not None
    study = run.study()
    progress = TrialProgress(config.experiment_name, config.iterations, budget.started,
                             budget.search_deadline)
    cut_off = CutOff(workers.cut_off)

    def record(result: TrialResult) -> str:
        run_id = run.record(result)
        progress.update(result.candidate.label, run.best and run.best.candidate.label)
        if run.best is not None:
            # Trials started before any model existed may run to the budget's end; now there is
            # one to refit, the running trials stop at the search's deadline instead.
            cut_off.follow(stop_by())
        return run_id

    def deadline() -> float:
        return budget.deadline_after(run.leaders, len(data.folds))

    def stop_by() -> float:
        # Until a trial succeeds there is no model to refit: the running ones may use the whole
        # budget, or a small budget on big data would end with nothing to register.
        return deadline() if run.best is not None else budget.end - REGISTER_SECONDS

    limits = SearchLimits(
        iterations=config.iterations,
        deadline=deadline,
        batch_size=config.concurrency,
        exit_score=config.experiment_exit_score,
        patience=config.early_stopping_patience if config.enable_early_stopping else None,
        prune=config.enable_pruning and min(len(v) for _, v in data.folds) >= PRUNE_MIN_ROWS,
    )
    try:
        return run_search(study, list(profile.families), profile.metric, limits,
                          _TaskEvaluator(config, workers.payload, stop_by), record, run.history,
                          [*run.retry, *run.warm_start])
    finally:
        progress.finish()
        workers.close()  # now, not after the refit: idle workers hold the data and the libraries
