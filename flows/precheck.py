"""The command's early refusals, before Prefect is imported or its temporary API started: a wrong
metric or model family name (the registries' names, no library loaded), and a wrong column (the
tables' column names read alone: a Parquet schema, a CSV header; no rows), in the flow's own
words. Through the flow they took 9-15 s (Prefect's start, the data read); here well under one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tasks.errors import ConfigError
from tasks.names import METRIC_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tasks.config import AutoMLConfig

__all__ = ["check_columns", "check_names", "metrics_of", "DEFAULT_METRICS", "TASKS"]

TASKS = ("classification", "regression")
# tasks.metrics' regression metrics and defaults: that module loads scikit-learn (1.5-2 s), which
# naming a metric does not need (tests/test_flows/test_precheck.py holds them equal).
_REGRESSION_METRICS = frozenset({
    "normalized_root_mean_squared_error", "root_mean_squared_error",
    "normalized_mean_absolute_error", "mean_absolute_error", "r2_score", "spearman_correlation",
    "mean_absolute_percentage_error",
})
DEFAULT_METRICS = {"classification": "AUC_weighted",
                   "regression": "normalized_root_mean_squared_error"}


def metrics_of(task: str) -> list[str]:
    """The metric names of a task, in the registry's order."""
    regression = task == "regression"
    return [name for name in METRIC_NAMES if (name in _REGRESSION_METRICS) == regression]


def check_names(config: AutoMLConfig) -> None:
    """Raise the ConfigError the flow would, later, for a primary_metric or a model family that
    no task has, or that the given task has not (with the task inferred from the target, a name
    of the other task is left to the flow). A plugin's families (AUTOML_PLUGINS) count: its
    modules are imported when a name is not among the built-in ones."""
    if config.primary_metric:
        _check_metric(config.primary_metric, config.task)
    if not (config.allowed_models or config.blocked_models):
        return
    from tasks.models.plugins import PLUGINS_VARIABLE, load_plugins

    try:
        _check_families(config)
    except ConfigError:
        if not os.environ.get(PLUGINS_VARIABLE, "").strip():
            raise
        load_plugins()  # as the flow does first; its own sentence when a module is missing
        _check_families(config)


def _check_metric(name: str, task: str | None) -> None:
    found = {n.lower(): n for n in METRIC_NAMES}.get(name.lower())
    if found is None:  # tasks.metrics.get_metric's sentences, with every task when none is given
        tasks = [task] if task else TASKS
        raise ConfigError(f"primary_metric '{name}' is an unknown metric; " + _by_task(
            lambda t: sorted(metrics_of(t)), "valid {task} metrics are: ", tasks))
    owner = "regression" if found in _REGRESSION_METRICS else "classification"
    if task and owner != task:
        raise ConfigError(f"primary_metric '{name}' is a metric for {owner}, not {task}: use one "
                          f"of: {', '.join(sorted(metrics_of(task)))}")


def _check_families(config: AutoMLConfig) -> None:
    from tasks.models.families import FAMILIES, resolve_families

    if config.task:  # the flow's own check, whole: unknown names and nothing left to try
        resolve_families(config.task, config.allowed_models, config.blocked_models)
        return

    def known(name: str, task: str) -> bool:
        try:
            resolve_families(task, [name])
        except ConfigError:
            return False
        return True

    for knob, names in (("allowed_models", config.allowed_models),
                        ("blocked_models", config.blocked_models)):
        for name in names or ():
            if not any(known(name, task) for task in TASKS):
                raise ConfigError(
                    f"{knob} names '{name}', which is not a model family; " + _by_task(
                        lambda t: [f.name for f in FAMILIES.values() if t in f.estimators],
                        "{task} models are: ", TASKS))


def _by_task(names: Callable[[str], list[str]], head: str, tasks: Sequence[str]) -> str:
    return "; ".join(head.format(task=task) + ", ".join(names(task)) for task in tasks)


def check_columns(config: AutoMLConfig) -> None:
    """Raise the flow's DataError when a table cannot be read, the training table lacks the
    target or the weight column, or a validation or test table lacks the target.

    Whatever the names alone cannot tell is left to the flow, as before: tables reached with a
    Prefect Secret block's credentials (on the Prefect API), formats without a cheap header
    (JSON Lines), and storage that does not answer (the flow's read retries it).
    """
    if config.storage_secret:
        return
    from tasks.data.columns import require_column, require_columns
    from tasks.data.storage import read_columns
    from tasks.errors import StorageError

    tables = {"training data": config.training_data, "validation data": config.validation_data,
              "test data": config.test_data}
    try:
        # All read first, in the flow's order: a table that cannot be read is said first there.
        names = {what: read_columns(url, what=what, storage_options=config.storage_options,
                                    encoding=config.encoding)
                 for what, url in tables.items() if url is not None}
    except StorageError:
        return
    if (training := names["training data"]) is not None:
        require_columns(training, config.training_data, config.target, config.weight_column)
    for what, url in tables.items():
        if what != "training data" and url is not None and (other := names[what]) is not None:
            require_column(config.target, other, url, "target column")
