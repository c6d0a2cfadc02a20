"""The training flow's steps as Prefect tasks: each a plain function of tasks/ (or flows.search),
given the data it needs. Retries only where there is I/O that can fail and succeed again
(reading the tables, writing to MLflow and the registry); never for a user's own mistake.

Each step's wall time is kept for the run's result (phase_seconds) and its log.
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.search import search_trials
from tasks.data.guardrails import build_report
from tasks.data.ingest import read_tables
from tasks.data.inspect import inspect_data
from tasks.data.split import split_data
from tasks.errors import AutoMLError, StorageError
from tasks.final.ensemble import final_choice
from tasks.final.evaluation import evaluate_model
from tasks.final.refit import refit_model
from tasks.registry.portable import log_onnx
from tasks.registry.publish import describe_model, register_model, report_run
from tasks.registry.run import open_run
from tasks.search.head_start import trial_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prefect import Task
    from prefect.client.schemas.objects import State, TaskRun


__all__ = ["Phases", "timed", "io_task", "transient", "trial_settings", "ingest", "inspect",
           "split", "guardrails", "track", "search", "ensemble", "refit", "evaluate", "report",
           "register", "describe", "export"]

P = ParamSpec("P")
R = TypeVar("R")


class Phases:
    """Seconds spent in each step, for the log and the result."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 2) for name, seconds in self.seconds.items()}

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}s" for name, seconds in self.seconds.items())


class _Current:
    # A class attribute, not a module global: a step's task is pickled by value when a Dask
    # runner ships a trial started inside it, and a class is pickled by reference, its
    # ContextVar (which cannot be pickled) with it.
    phases: ContextVar[Phases | None] = ContextVar("automl_phases", default=None)


@contextmanager
def timed() -> Iterator[Phases]:
    """The steps run inside it add their seconds to the Phases it yields."""
    phases = Phases()
    token = _Current.phases.set(phases)
    try:
        yield phases
    finally:
        _Current.phases.reset(token)


def transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    """Retry storage hiccups and the services' own errors, never the user's own mistakes."""
    error = state.data
    return isinstance(error, StorageError) or not isinstance(error, AutoMLError)


def io_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A step with I/O that can fail and succeed again: tried up to three times."""
    return task(name=name, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5],
                retry_condition_fn=transient)


def _step(fn: Callable[P, R], name: str, io: bool = False) -> Task[P, R]:
    @functools.wraps(fn)
    def timed_fn(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            if (phases := _Current.phases.get()) is not None:
                phases.add(name, time.monotonic() - started)

    # The inputs are DataFrames and models: hashing them costs, caching them would be wrong.
    return (io_task(name) if io else task(name=name, cache_policy=NO_CACHE))(timed_fn)


ingest = _step(read_tables, "ingest", io=True)
inspect = _step(inspect_data, "inspect")
split = _step(split_data, "split")
guardrails = _step(build_report, "guardrails")
track = _step(open_run, "track", io=True)
search = _step(search_trials, "search")
ensemble = _step(final_choice, "ensemble")
refit = _step(refit_model, "refit")
evaluate = _step(evaluate_model, "evaluate")
report = _step(report_run, "report", io=True)
register = _step(register_model, "register", io=True)
describe = _step(describe_model, "describe", io=True)
export = _step(log_onnx, "export-onnx", io=True)
