"""The flow's steps (flows.steps): per-step seconds, retries on I/O only, the trials' settings."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from prefect import flow
from support import dataset_path, load

from flows import steps
from flows.steps import Phases, io_task, timed, transient, trial_settings
from tasks.config import parse_config
from tasks.data.ingest import TableSources
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import ConfigError, DataError, SearchError, StorageError


def failed_with(error: BaseException) -> bool:
    # What Prefect hands retry_condition_fn: a Failed state whose data is the exception.
    return transient(None, None, SimpleNamespace(data=error))


def test_phases_sum_repeated_steps_and_print_them_in_order():
    phases = Phases()
    phases.add("search", 1.234)
    phases.add("refit", 0.5)
    phases.add("search", 2.0)
    assert phases.seconds == {"search": pytest.approx(3.234), "refit": pytest.approx(0.5)}
    assert phases.rounded() == {"search": 3.23, "refit": 0.5}
    assert str(phases) == "search 3.2s, refit 0.5s"
    assert str(Phases()) == ""


def test_short_steps_add_up_before_rounding():
    phases = Phases()
    for _ in range(3):
        phases.add("evaluate", 0.004)  # each under the 5 ms a rounded total would drop
    assert phases.rounded() == {"evaluate": 0.01}


def test_timed_collects_the_steps_run_inside_it_and_nothing_outside(prefect_api):
    config = parse_config(training_data=str(dataset_path("adult")), target="class")

    @flow
    def some_steps() -> tuple[Phases, dict[str, float], dict[str, float], float]:
        steps.inspect(config, load("adult"))  # before: not collected
        started = time.monotonic()
        with timed() as phases:
            tables = steps.ingest(TableSources.of(config))
            profile = steps.inspect(config, tables.train)
            once = dict(phases.seconds)
            steps.inspect(config, tables.train)  # the same step again: added to its seconds
            inside = dict(phases.seconds)
        wall = time.monotonic() - started
        steps.split(SplitPlan.of(config), profile, tables.train)  # after: not collected
        return phases, once, inside, wall

    phases, once, inside, wall = some_steps()
    assert list(phases.seconds) == ["ingest", "inspect"]
    assert phases.seconds == inside  # the step run after the block added nothing
    assert all(seconds > 0 for seconds in once.values())
    assert inside["inspect"] > once["inspect"]
    assert sum(inside.values()) <= wall + 0.02  # the steps' own time, within the block's


def test_transient_retries_storage_and_service_errors_but_not_the_users_mistakes():
    assert failed_with(StorageError("data 's3://b/x.parquet' cannot be reached: timeout"))
    assert failed_with(OSError("connection reset by peer"))
    assert failed_with(RuntimeError("MLflow answered 503"))
    assert not failed_with(DataError("target column 'y' is not in the data"))
    assert not failed_with(ConfigError("primary_metric 'auc' is an unknown metric"))
    assert not failed_with(SearchError("every trial failed"))


def test_an_io_step_is_tried_three_times_when_the_io_fails_twice(prefect_api):
    tries: list[float] = []

    @io_task("flaky-read")
    def flaky_read() -> str:
        tries.append(time.monotonic())
        if len(tries) < 3:
            raise OSError("connection reset by peer")
        return "the table"

    @flow
    def reading() -> str:
        return flaky_read()

    assert reading() == "the table"
    assert len(tries) == 3
    # Prefect waited between the tries as the step asks: 1 s, then 5 s.
    assert tries[1] - tries[0] >= 0.9 and tries[2] - tries[1] >= 4.9


def test_an_io_step_is_not_tried_again_on_a_users_mistake(prefect_api):
    tries: list[int] = []

    @io_task("bad-read")
    def bad_read() -> str:
        tries.append(1)
        raise DataError("data 'missing.csv' was not found")

    @flow
    def reading() -> str:
        return bad_read()

    state = reading(return_state=True)
    assert state.is_failed()
    assert len(tries) == 1
    with pytest.raises(DataError, match="was not found"):
        state.result()


def settings_of(name: str, target: str, **knobs: object):
    config = parse_config(training_data=name, target=target, **knobs)
    frame = load(name)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    return profile, trial_settings(config, profile, data)


def test_trial_settings_take_the_configs_knobs():
    profile, settings = settings_of("credit_g", "class", featurization="off", random_state=11,
                                    max_cores_per_iteration=3)
    assert settings.featurize is False
    assert (settings.seed, settings.n_jobs) == (11, 3)
    assert settings.roles == profile.roles
    # Binary data scored by AUC: boosting's early stopping watches the libraries' (binary) AUC.
    assert (settings.metric, settings.early_stopping) == ("AUC_weighted", "auc")

    _, defaults = settings_of("credit_g", "class")
    assert defaults.featurize is True and defaults.seed == 0
    _, accuracy = settings_of("credit_g", "class", primary_metric="accuracy")
    assert (accuracy.metric, accuracy.early_stopping) == ("accuracy", None)


def test_multiclass_auc_has_no_early_stopping_watch_but_a_loss_has_one():
    _, auc = settings_of("hpc_jobs", "class")
    assert (auc.metric, auc.early_stopping) == ("AUC_weighted", None)
    _, loss = settings_of("hpc_jobs", "class", primary_metric="log_loss")
    assert (loss.metric, loss.early_stopping) == ("log_loss", "loss")
    _, regression = settings_of("concrete", "compressive_strength")
    assert regression.early_stopping == "loss"
