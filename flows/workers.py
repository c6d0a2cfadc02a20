"""The trial worker pool as Prefect sees it: each trial a Prefect task on the flow's task runner,
supervising a worker process (tasks.search.workers) that can be stopped at its limits."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.states import Completed

from flows.summary import significant
from tasks.search import head_start
from tasks.search.workers import Payload, close_pools, cut_off_pools, pool_for, trial_limits

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from uuid import UUID

    from distributed import Client
    from prefect.client.schemas.objects import State
    from prefect.futures import PrefectFuture

    from tasks.data.sets import SearchData
    from tasks.search.candidates import Candidate, TrialResult, TrialSettings
    from tasks.search.workers import TrialLimits

__all__ = ["TrialWorkers", "TaskEvaluator", "CutOff"]

log = logging.getLogger("automl")


@dataclass(frozen=True)
class WorkerSpec:
    """Where and how many trial workers run."""

    folder: Path  # the payload file goes here: a path every worker can read
    name: str  # the experiment, in the payload's file name
    concurrency: int
    dask: bool = False  # on a Dask cluster rather than local processes


class TrialWorkers:
    """The run's trial workers: the search data written once for them, and, on the local
    runner, their processes started at once, so loading the model libraries and the data
    overlaps the checks and the MLflow set-up that come before the search (about 2 s).
    Stopped when the search ends, or when the run fails before it."""

    def __init__(self, spec: WorkerSpec, data: SearchData, settings: TrialSettings,
                 prepared: Payload | None = None) -> None:
        self.spec, self.data, self.settings = spec, data, settings
        self.payload: Payload | None = None
        self._prepared = prepared  # written, its workers started, by tasks.search.head_start

    def __enter__(self) -> TrialWorkers:
        if self._prepared is not None:
            self.payload, self._prepared = self._prepared, None
            return self
        name = f"{self.spec.name}-{uuid.uuid4().hex[:12]}"
        self.payload = Payload.write(self.data, self.settings, self.spec.folder, name)
        if self.spec.dask:
            self.payload = _publish(self.payload)
        else:
            pool_for(self.payload).warm(self.spec.concurrency)
        return self

    def close(self) -> None:
        """Stop every trial process of the run (each Dask worker keeps its own pool)."""
        if self.payload is None:
            return
        payload, self.payload = self.payload, None
        head_start.release(payload)
        close_pools(payload)
        self._on_dask_workers(close_pools, payload)
        if payload.dataset is not None:
            self._on_dask_cluster(payload.dataset)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(payload.path)

    def __exit__(self, *_: object) -> None:
        self.close()

    def searching(self) -> None:
        """The search has begun: the head start, if any, starts no more trials of its own."""
        assert self.payload is not None
        head_start.hold(self.payload)

    def cut_off(self, at: float) -> None:
        """Running trials stop at epoch time `at`, sooner than the limits they started with."""
        assert self.payload is not None
        cut_off_pools(self.payload, at)
        self._on_dask_workers(cut_off_pools, self.payload, at)

    @staticmethod
    def _on_dask_cluster(dataset: str) -> None:
        try:
            _dask_client().unpublish_dataset(dataset)
        except Exception as exc:  # noqa: BLE001 - a cluster gone holds nothing any more
            log.debug("could not release the payload on the Dask cluster: %s", exc)

    def _on_dask_workers(self, function: Callable[..., None], *args: object) -> None:
        if not self.spec.dask:
            return
        try:
            _dask_client().run(function, *args)
        except Exception as exc:  # noqa: BLE001 - a cluster gone has no trials left to stop
            log.debug("could not reach the Dask workers' trial processes: %s", exc)


def _publish(payload: Payload) -> Payload:
    """The payload held by the Dask cluster (scattered once, published under its file's name),
    its file here removed: trial workers anywhere get it from the cluster, not a shared path."""
    client = _dask_client()
    with open(payload.path, "rb") as src:
        future = client.scatter(src.read(), hash=False)  # type: ignore[no-untyped-call]
    name = os.path.basename(payload.path)
    client.publish_dataset(future, name=name)
    os.unlink(payload.path)
    return replace(payload, dataset=name)


def _dask_client() -> Client:
    """The flow's Dask task runner's client (its cluster: the one at dask_address or the local
    one it started), else the process's default client."""
    from distributed import default_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    client: Client | None = getattr(context and context.task_runner, "client", None)
    return client or default_client()  # type: ignore[no-untyped-call]


@task(name="trial", cache_policy=NO_CACHE)
def _trial(candidate: Candidate, payload: Payload, limits: TrialLimits,
           metric: str | None = None) -> State[TrialResult]:
    # Runs where the task runner puts it (a thread of the flow, a Dask worker); the trial itself
    # runs in that process's worker pool, where it can be stopped. A failed trial is a result
    # the search records, not a failed task: the task's state message says how it went.
    result = head_start.claim(payload, candidate) or pool_for(payload).run(candidate, limits)
    return Completed(message=trial_message(result, metric), data=result)


def trial_message(result: TrialResult, metric: str | None) -> str:
    """What a trial's task shows in Prefect's UI: its score and time, or why it has none, and
    its parameters."""
    params = ", ".join(f"{k}={significant(v)}" for k, v in result.candidate.params.items())
    if result.ok and metric in result.metrics:
        head = f"{metric} {significant(result.metrics[metric])} in {result.fit_seconds:.1f} s"
    else:
        why = f" ({result.reason})" if result.reason not in (None, result.status) else ""
        error = result.error.strip().splitlines()[-1] if result.error else ""  # the exception's
        head = f"{result.status}{why}" + (f": {error}" if error else "")
    return f"{head}; {params}" if params else head


class TaskEvaluator:
    """Trials as Prefect tasks on the flow's task runner, each limited in time and memory:
    iteration_timeout_minutes, or the time until `stop_by` (time.monotonic()) when sooner."""

    def __init__(self, payload: Payload, stop_by: Callable[[], float],
                 timeout_minutes: float | None = None, memory_mb: float | None = None,
                 metric: str | None = None, run_memory_mb: float | None = None) -> None:
        self.payload, self.stop_by = payload, stop_by
        self.timeout_minutes, self.memory_mb = timeout_minutes, memory_mb
        self.run_memory_mb = run_memory_mb
        self.metric = metric  # the primary metric, shown on each trial's task
        self.task_runs: dict[int, UUID] = {}  # candidate number -> its trial task's run

    def limits(self) -> TrialLimits:
        return trial_limits(self.stop_by(), self.timeout_minutes, self.memory_mb,
                            self.run_memory_mb)

    def submit(self, candidate: Candidate) -> PrefectFuture[TrialResult]:
        return _trial.with_options(task_run_name=candidate.label).submit(  # type: ignore[return-value]
            candidate, self.payload, self.limits(), self.metric
        )

    def first_done(self, handles: list[PrefectFuture[TrialResult]]) -> PrefectFuture[TrialResult]:
        return next(as_completed(handles))

    def result(self, handle: PrefectFuture[TrialResult]) -> TrialResult:
        result = handle.result()
        self.task_runs[result.candidate.number] = handle.task_run_id
        return result


class CutOff:
    """When running trials are stopped: the search's deadline, passed on to the workers as it
    moves with the best trials' refit, later as well as earlier. Moved only earlier, trials
    started in the time a cheaper best trial gained would be stopped at once."""

    def __init__(self, tell: Callable[[float], None]) -> None:
        self.tell, self.at = tell, float("inf")  # time.monotonic()

    def follow(self, deadline: float) -> None:
        if abs(deadline - self.at) > 1.0:
            self.at = deadline
            self.tell(time.time() + deadline - time.monotonic())  # an epoch time crosses processes
