"""The training flow: ingest, check, split, search, ensemble, refit, evaluate, register."""

from __future__ import annotations

import logging
import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.publish import register
from flows.result import TrainResult, build_result
from flows.run import Budget, Phases, TrackedRun, Tables, read_tables
from flows.trials import TrialWorkers, search
from flows.ui import reported_training, run_name
from tasks.config import AutoMLConfig
from tasks.data.guardrails import build_report
from tasks.final.ensemble import choose_model
from tasks.data.inspect import inspect_data
from tasks.models.plugins import load_plugins
from tasks.final.evaluation import evaluate_model
from tasks.final.refit import refit_model
from tasks.data.split import SplitPlan, split_data

__all__ = ["automl_flow", "train", "task_runner", "AutoMLConfig"]

log = logging.getLogger("automl")

_STEP = {"cache_policy": NO_CACHE}  # the inputs are DataFrames: hashing them costs, caching is wrong

ingest = task(read_tables, name="ingest", retries=2, retry_delay_seconds=[1, 5],
              retry_condition_fn=Tables.transient, **_STEP)
inspect = task(inspect_data, name="inspect", **_STEP)
split = task(split_data, name="split", **_STEP)
guardrails = task(build_report, name="guardrails", **_STEP)
ensemble = task(choose_model, name="ensemble", **_STEP)
refit = task(refit_model, name="refit", **_STEP)
evaluate = task(evaluate_model, name="evaluate", **_STEP)


@flow(
    name="automl-train",
    flow_run_name=run_name,
    task_runner=ThreadPoolTaskRunner(),
    validate_parameters=True,
)
@reported_training
def automl_flow(
    config: AutoMLConfig, warm_start: list[dict[str, Any]] | None = None,
    started_at: float | None = None, shutdown_seconds: float = 0.0,
) -> TrainResult:
    """Train, pick and register the best model for one labelled table.

    Args:
        config: The training run's settings (Azure automated ML's names).
        warm_start: Trial parameters to try first, e.g. a previous study's best (automl-retrain).
        started_at: Epoch seconds when the run was asked for; the command line passes its own
            start, so the budget covers Prefect's and MLflow's start-up too (the flow's own start
            when empty).
        shutdown_seconds: What the caller needs after the flow returns, inside the budget (the
            command line: Prefect's and MLflow's shutdown).
    """
    minutes = config.experiment_timeout_minutes
    budget = Budget(minutes, started=_clock_start(started_at, minutes), shutdown=shutdown_seconds)
    load_plugins()
    tables = ingest(config)
    profile = inspect(config, tables.train, tables.validation, tables.test)
    data, test = split(SplitPlan.of(config), profile, tables.train, tables.validation, tables.test)
    phases = Phases()
    with TrialWorkers(config, profile, data) as workers:  # they load the data during the checks
        report = guardrails(profile, data, test)
        with TrackedRun(config, profile, data, report, workers.settings, tables.train) as run:
            run.warm_start = list(warm_start or [])
            with phases("search"):
                outcome = search(config, profile, data, run, budget, workers)
            with phases("ensemble"):
                choice = ensemble(outcome.ranked(profile.metric), data, profile.metric,
                                  rounds=config.ensemble_iterations,
                                  enabled=config.enable_ensembling, seed=config.random_state,
                                  affordable=budget.affords(len(data.folds)))
            with phases("refit"):
                model = refit(choice, data, run.refit_settings)
            with phases("evaluate"):
                evaluation = evaluate(model, choice, data, test)
            with phases("register"):
                registered = register(run, model, data, choice, evaluation, outcome, budget)
    log.info("time: %s; %.1fs of the %.1f-minute budget", phases, budget.elapsed(), minutes)
    return build_result(config, profile, report, data, outcome, choice, evaluation, registered, run,
                        budget, phases)


def task_runner(config: AutoMLConfig) -> Any:
    """Where the trials run: threads of this process that each watch a local worker process, or a
    Dask cluster (an existing one at dask_address, else a local one of worker processes)."""
    if config.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": config.concurrency, "threads_per_worker": 1, "processes": True,
            "host": "127.0.0.1", "dashboard_address": None,
        })
    return ThreadPoolTaskRunner(max_workers=config.concurrency)


def train(
    config: AutoMLConfig, started_at: float | None = None, shutdown_seconds: float = 0.0
) -> TrainResult:
    """Run the flow on the task runner the config names."""
    return automl_flow.with_options(task_runner=task_runner(config))(
        config, started_at=started_at, shutdown_seconds=shutdown_seconds
    )


# Start-up counted against the budget is capped at this fraction of it: a budget shorter than
# Prefect's start-up still gets its first trials (and overruns) rather than no model at all.
MAX_STARTUP_FRACTION = 0.5


def _clock_start(started_at: float | None, minutes: float) -> float:
    """The monotonic clock's reading at started_at (a wall-clock time, as it crosses processes)."""
    now = time.monotonic()
    if started_at is None:
        return now
    return now - min(max(0.0, time.time() - started_at), MAX_STARTUP_FRACTION * minutes * 60)
