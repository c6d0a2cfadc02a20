"""The training run's log: the `automl` logger at INFO unless someone set its level, and the task
lines of a mistake the final state tells kept to DEBUG. (On a real worker: test_deploy.py.)"""

from __future__ import annotations

import logging

import pytest
from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

from flows.run_log import run_log
from tasks.errors import ConfigError


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_flow_run():
    # Prefect's API handler on these loggers warns about lines outside a flow run: these are.
    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
        yield


@pytest.fixture
def task_lines():
    logger, kept = logging.getLogger("prefect.task_runs"), Kept()
    logger.addHandler(kept)
    saved = logger.level
    yield logger, kept.records
    logger.removeHandler(kept)
    logger.setLevel(saved)


def failed_task(logger: logging.Logger, error: Exception, task_run: str) -> None:
    try:
        raise error
    except Exception:
        logger.error("Task run failed with exception: %r", error, exc_info=True,
                     extra={"task_run_id": task_run})
    logger.error("Finished in state Failed(%r)", str(error), extra={"task_run_id": task_run})


@pytest.mark.parametrize(("level", "during"), [(logging.NOTSET, logging.INFO),
                                               (logging.WARNING, logging.WARNING)])
def test_the_search_logs_at_info_unless_its_level_was_set(level, during):
    logger = logging.getLogger("automl")
    saved = logger.level
    logger.setLevel(level)
    try:
        with run_log():
            assert logger.level == during
        assert logger.level == level
    finally:
        logger.setLevel(saved)


def test_a_told_mistake_leaves_no_task_line_and_other_failures_keep_theirs(task_lines):
    logger, records = task_lines
    logger.setLevel(logging.INFO)
    with run_log():
        failed_task(logger, ConfigError("target column 'price' is not in t.csv"), "a")
        failed_task(logger, RuntimeError("a bug"), "b")
    assert [(r.levelname, r.task_run_id) for r in records] == [("ERROR", "b"), ("ERROR", "b")]
    assert records[0].exc_info is not None  # a bug keeps its traceback


def test_at_debug_the_mistake_keeps_its_traceback(task_lines):
    logger, records = task_lines
    logger.setLevel(logging.DEBUG)
    with run_log():
        failed_task(logger, ConfigError("no"), "a")
    assert [r.levelname for r in records] == ["DEBUG", "DEBUG"] and records[0].exc_info
    failed_task(logger, ConfigError("no"), "c")  # outside a run: Prefect's own lines
    assert [r.levelname for r in records[2:]] == ["ERROR", "ERROR"]


def test_the_engine_raising_the_mistake_again_after_the_run_leaves_no_line():
    logger, kept = logging.getLogger("prefect.flow_runs"), Kept()
    logger.addHandler(kept)
    try:
        with run_log():
            pass
        for error in (ConfigError("no"), RuntimeError("a bug")):
            try:
                raise error
            except Exception:
                logger.error("Engine execution exited with unexpected exception", exc_info=True)
    finally:
        logger.removeHandler(kept)
    assert [r.exc_info[1].args for r in kept.records] == [("a bug",)]
