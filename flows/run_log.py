"""What a training run's Logs tab shows: the search's own lines (the `automl` logger: trials,
guardrails, time) at INFO, and a user's mistake told once, by the run's final state, with the
traceback only at DEBUG.

Under a worker, PREFECT_LOGGING_EXTRA_LOGGERS=automl (prefect.yaml) gives the logger Prefect's
API handler but no level, so it would inherit the root's WARNING and the tab would show no trial.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from tasks.errors import AutoMLError, ServiceError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["logged_run", "run_log"]

P = ParamSpec("P")
R = TypeVar("R")

# What flows.ui.fails_as_sentence turns into the run's Failed state and its one sentence.
_TOLD = (AutoMLError, ServiceError)


class _TaskLines(logging.Filter):
    """Prefect logs a failed task's exception at ERROR with its traceback, then the task's Failed
    state, the sentence in both; the flow run's final state says it again. For an error the
    final state tells, the task's two lines are details: DEBUG (the traceback kept there)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[object] = set()  # the task runs whose failure the final state tells

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        task_run = getattr(record, "task_run_id", None)
        if isinstance(error, _TOLD):
            self.failed.add(task_run)
        elif record.levelno < logging.ERROR or task_run not in self.failed:
            return True
        return _to_debug(record)


class _EngineLine(logging.Filter):
    """Once the flow returned its Failed state, Prefect's engine raises the error again in a
    deployed run's process and logs it at ERROR with its traceback: to DEBUG too. That line comes
    after the flow, as the process ends, so this filter stays (it keeps no state)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return _to_debug(record) if isinstance(error, _TOLD) else True


def _to_debug(record: logging.LogRecord) -> bool:
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    # The record exists because ERROR was enabled: shown only where DEBUG is too.
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


@contextmanager
def run_log() -> Iterator[None]:
    """The `automl` logger at INFO when nobody set its level (the command line and the Python
    API's progress line set theirs), and a mistake's task lines at DEBUG; as they were after."""
    search = logging.getLogger("automl")
    unset = search.level == logging.NOTSET
    if unset:
        search.setLevel(logging.INFO)
    flows = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, _EngineLine) for f in flows.filters):
        flows.addFilter(_EngineLine())
    tasks = logging.getLogger("prefect.task_runs")
    told = _TaskLines()
    tasks.addFilter(told)
    try:
        yield
    finally:
        tasks.removeFilter(told)
        if unset:
            search.setLevel(logging.NOTSET)


def logged_run(fn: Callable[P, R]) -> Callable[P, R]:
    """fn with run_log around it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with run_log():
            return fn(*args, **kwargs)

    return wrapper
