"""The search's head start: the command line reads, checks and splits the table, starts the trial
workers and runs the portfolio's first trials while Prefect's API and the flow start (4-6 s on 2
cores, more than a small table's first trials take). The flow takes the prepared data instead of
reading it again, and its search claims those trials' results when it asks for the same
configurations, which it does in the same order (a new study asks the portfolio first).

Nothing here imports Prefect or MLflow: that is the point. The trials are recorded (Optuna,
MLflow, the flow's progress) when the flow's search claims them, as any other trial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.workers import Payload, close_pools, pool_for, trial_limits

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from tasks.config import AutoMLConfig
    from tasks.data.ingest import Tables
    from tasks.data.profile import Profile
    from tasks.data.sets import HeldOut, SearchData
    from tasks.search.candidates import TrialResult
    from tasks.search.workers import TrialLimits

__all__ = ["Prepared", "HeadStart", "prepare", "take_prepared", "trial_settings", "claim", "hold",
           "release", "eligible", "head_start_threads"]

log = logging.getLogger("automl")


def trial_settings(config: AutoMLConfig, profile: Profile, data: SearchData) -> TrialSettings:
    """What every trial of a run shares besides the data."""
    from tasks.budget import boosting_seconds
    from tasks.metrics import early_stopping_watch

    n_classes = None if data.classes is None else len(data.classes)
    return TrialSettings(
        profile.roles, config.random_state, config.threads_per_trial,
        featurize=config.featurize,
        onnx=config.enable_onnx_compatible_models,
        early_stopping=early_stopping_watch(profile.metric, n_classes),
        metric=profile.metric.name,
        fit_seconds=boosting_seconds(config.experiment_timeout_minutes,
                                     config.iteration_timeout_minutes, len(data.folds)),
    )


class HeadStart:
    """The portfolio's first configurations, run in order on `concurrency` threads of this
    process (each supervising a worker of the run's pool) until the flow's search holds it."""

    def __init__(self, payload: Payload, plan: list[Candidate],
                 limits: Callable[[], TrialLimits], concurrency: int) -> None:
        self.payload = payload
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="automl-head-start")
        self._lock = threading.Lock()
        workers = pool_for(payload)

        def run(candidate: Candidate) -> TrialResult:
            return workers.run(candidate, limits())  # the limits as the trial starts

        self._plan: list[tuple[Candidate, Future[TrialResult]]] = [
            (c, self._pool.submit(run, c)) for c in plan
        ]

    def claim(self, candidate: Candidate) -> TrialResult | None:
        """The result of the planned trial of the same configuration, waiting for it if it runs;
        None when there is none, or it had not started when the search held the head start (the
        caller runs the candidate itself)."""
        with self._lock:
            index = next((i for i, (c, _) in enumerate(self._plan) if c.key == candidate.key),
                         None)
            if index is None:
                return None
            _, future = self._plan.pop(index)
        if future.cancel():
            return None
        try:
            result = future.result()
        except CancelledError:
            return None
        return replace(result, candidate=candidate)

    def hold(self) -> None:
        """Start no more planned trials: from here on the search starts its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)


_STARTS: dict[Payload, HeadStart] = {}
_STARTS_LOCK = threading.Lock()


def claim(payload: Payload, candidate: Candidate) -> TrialResult | None:
    """This process's head-start result for the candidate (HeadStart.claim), if any."""
    with _STARTS_LOCK:
        start = _STARTS.get(payload)
    return None if start is None else start.claim(candidate)


def hold(payload: Payload) -> None:
    """The search has begun: the head start of this payload starts nothing more."""
    with _STARTS_LOCK:
        start = _STARTS.get(payload)
    if start is not None:
        start.hold()


def release(payload: Payload) -> None:
    with _STARTS_LOCK:
        start = _STARTS.pop(payload, None)
    if start is not None:
        start.hold()


@dataclass
class Prepared:
    """What the command line did before the flow started, for the flow to take over."""

    config: AutoMLConfig
    tables: Tables
    profile: Profile
    data: SearchData
    test: HeldOut | None
    settings: TrialSettings
    payload: Payload
    seconds: dict[str, float]  # the steps done here: ingest, inspect, split

    def close(self) -> None:
        """Stop the head start and its workers; the flow does this itself once it took them."""
        if self in _PREPARED:
            _PREPARED.remove(self)
        release(self.payload)
        close_pools(self.payload)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.payload.path)


_PREPARED: list[Prepared] = []


def head_start_threads(concurrency: int) -> int:
    """Trials the head start runs at once: one core is left to Prefect's API server and the
    flow's import, which start meanwhile (on 2 cores, two trials at once starved them: the flow
    began 15 s into a 30 s run, and 2 to 5 trials finished in it against 13 to 19)."""
    return max(1, concurrency - 1)


def planned(config: AutoMLConfig) -> int:
    """How many of the first configurations the head start may run. A deterministic run's
    search gives its first lag + 1 trials no pruning bars (they see no results yet): the head
    start, which runs without them, goes no further, so the same trials give the same results
    whichever of the two ran them."""
    from tasks.search.loop import ordered_lag

    if config.deterministic:
        return min(config.iterations, ordered_lag(config.concurrency) + 1)
    return config.iterations


def eligible(config: AutoMLConfig) -> bool:
    """A new run on local workers, whose tables need nothing of Prefect to be read: a resumed
    run's first trials come from its history, a Dask runner's workers are elsewhere, a Secret
    block of storage options is read through Prefect's API, and distributed training reads its
    table on its cluster."""
    return (not config.resume and config.task_runner != "dask" and not config.storage_secret
            and config.training_mode != "distributed")


def prepare(config: AutoMLConfig, started_at: float, shutdown_seconds: float) -> Prepared:
    """Read, check and split the tables, write the payload, start the workers and the head start;
    held for the flow of this config (take_prepared). A refusal is raised here, before any
    trial starts."""
    # Imported here: the command line imports this module before the trial workers start, and
    # they should start at once.
    from tasks.budget import Budget
    from tasks.data.ingest import TableSources, read_tables
    from tasks.data.inspect import inspect_data
    from tasks.data.split import SplitPlan, split_data
    from tasks.models.plugins import load_plugins
    from tasks.search.portfolio import initial_points
    from tasks.search.screening import screening_rungs

    load_plugins()
    seconds: dict[str, float] = {}
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        seconds[name] = round(now - clock, 2)
        clock = now

    tables = read_tables(TableSources.of(config))
    lap("ingest")
    profile = inspect_data(config, tables.train, tables.validation, tables.test)
    lap("inspect")
    data, test = split_data(SplitPlan.of(config), profile, tables.train, tables.validation,
                            tables.test)
    lap("split")
    settings = trial_settings(config, profile, data)
    name = f"{config.experiment_name}-{uuid.uuid4().hex[:12]}"
    payload = Payload.write(data, settings, config.workdir_path / "cache", name)
    prepared = Prepared(config, tables, profile, data, test, settings, payload, seconds)
    try:
        pool_for(payload).warm(config.concurrency)
        budget = Budget.start(config.experiment_timeout_minutes, started_at, shutdown_seconds)
        stop_by = budget.trials_stop([], len(data.folds))

        def limits() -> TrialLimits:
            return trial_limits(stop_by, config.iteration_timeout_minutes,
                                config.max_memory_mb_per_iteration, config.max_memory_mb)

        points = initial_points(list(profile.families))[:planned(config)]
        plan = [Candidate(number, family, dict(point))
                for number, (family, point) in enumerate(points)]
        if rungs := screening_rungs([len(fit) for fit, _ in data.folds]):
            # As the search will ask them: the first on all the fit rows, then screened (itself
            # again first: tasks.search.screening).
            plan = [plan[0], *(replace(c, rows=rungs[0]) for c in plan)][:len(plan)]
        start = HeadStart(payload, plan, limits, head_start_threads(config.concurrency))
        with _STARTS_LOCK:
            _STARTS[payload] = start
    except BaseException:
        prepared.close()
        raise
    _PREPARED.append(prepared)
    return prepared


def take_prepared(config: AutoMLConfig) -> Prepared | None:
    """The command line's preparation for this very config, once."""
    for prepared in _PREPARED:
        if prepared.config is config:
            _PREPARED.remove(prepared)  # taken once: the list holds those not taken yet
            return prepared
    return None
