"""The training flow: ingest, check, split, search, ensemble, refit, evaluate, register."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ParamSpec

from prefect import Flow, flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows import steps
from flows.result import TrainResult, build_result
from flows.run_log import logged_run
from flows.search import PendingRun, RunRecords, SearchSettings
from flows.ui import orchestrated_run, reported_training, run_name
from flows.workers import TrialWorkers, WorkerSpec
from tasks.budget import LEADERS, Budget
from tasks.config import AutoMLConfig
from tasks.cores import available_cores
from tasks.data.guardrails import with_skipped
from tasks.data.ingest import TableSources
from tasks.data.sets import SearchData
from tasks.data.split import SplitPlan
from tasks.errors import ServiceError
from tasks.final.stacking import ensemble_seconds
from tasks.models.plugins import load_plugins
from tasks.registry.faults import describe_failure, service_failure
from tasks.registry.run import RunSpec, close_run, new_study_name
from tasks.search.candidates import TrialSettings
from tasks.search.head_start import take_prepared
from tasks.types import Params

if TYPE_CHECKING:
    import pandas as pd

    from tasks.data.guardrails import GuardrailReport
    from tasks.data.profile import Profile
    from tasks.registry.run import TrackedRun
    from tasks.search.head_start import Prepared

__all__ = ["automl_flow", "train", "task_runner", "AutoMLConfig"]

log = logging.getLogger("automl")
P = ParamSpec("P")


def _training_flow(fn: Callable[P, TrainResult]) -> Flow[P, TrainResult]:
    """fn as the automl-train flow: its search logged (flows.run_log), its view drawn."""
    return flow(
        name="automl-train",
        flow_run_name=run_name,
        # Prefect types the flow's runner as TaskRunner[PrefectFuture], which its own thread pool
        # runner (of concurrent futures) is not, to mypy.
        task_runner=ThreadPoolTaskRunner(),  # type: ignore[arg-type]
        validate_parameters=True,
    )(reported_training(logged_run(fn)))


@_training_flow
def automl_flow(config: AutoMLConfig) -> TrainResult:
    """Train, pick and register the best model for one labelled table.

    Args:
        config: The training run's settings (Azure automated ML's names).
    """
    return _run(config)


def _run(
    config: AutoMLConfig, warm_start: list[Params] | None = None,
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
    budget = Budget.start(config.experiment_timeout_minutes, started_at, shutdown_seconds)
    if config.training_mode == "distributed":
        from flows.distributed import distributed_run

        return distributed_run(config, budget)
    load_plugins()
    with steps.timed() as phases:
        if (prepared := take_prepared(config)) is not None:
            # The command line read, checked and split the tables and started the first trials
            # while Prefect started (tasks.search.head_start).
            tables, profile, data, test = (prepared.tables, prepared.profile, prepared.data,
                                           prepared.test)
            for name, seconds in prepared.seconds.items():
                phases.add(name, seconds)
        else:
            tables = steps.ingest(TableSources.of(config))
            profile = steps.inspect(config, tables.train, tables.validation, tables.test)
            data, test = steps.split(SplitPlan.of(config), profile, tables.train,
                                     tables.validation, tables.test)
        if config.enable_ensembling:
            budget = budget.planning(ensemble_seconds(
                len(data.y_valid), 0 if data.classes is None else len(data.classes)))
        with _workers(config, profile, data, prepared) as workers:
            report = steps.guardrails(profile, data, test)  # the workers load meanwhile
            records = _track(config, profile, data, report, tables.train)
            with _closing(records):
                # quote: Prefect would otherwise wait for the pending tracking step's future
                # inside `records` before starting the search.
                outcome = steps.search(  # type: ignore[call-overload]
                    SearchSettings.of(config), profile, data, quote(records), budget, workers,
                    warm_start or [])
                run = records.tracked()
                if outcome.skipped or config.max_memory_mb is not None:
                    report = with_skipped(report, outcome.skipped, config.max_memory_mb)
                    run.tracker.log_report(run.run_id, report.to_dicts(), report.to_text())
                ranked = outcome.ranked(profile.metric)
                # The search planned its end for refitting its leaders: that much is affordable.
                affordable = budget.affords(len(data.folds), planned=ranked[:LEADERS])
                choice = steps.ensemble(ranked, data, profile.metric,
                                        rounds=config.ensemble_iterations,
                                        enabled=config.enable_ensembling,
                                        seed=config.random_state, affordable=affordable,
                                        max_ms_per_row=config.max_predict_ms_per_row,
                                        onnx=config.enable_onnx_compatible_models)
                model = steps.refit(choice, data, _refit_settings(workers))
                evaluation = steps.evaluate(model, choice, data, test,
                                            workers.settings.n_jobs)
                # Registered first: the charts and the card take what time is left, never the
                # model's place in the registry.
                with _told(config, "registering the model",
                           f"nothing was registered, and the search's {len(outcome.results)} "
                           "trials are kept"):
                    registered = steps.register(run, model, data, evaluation, profile.metric,
                                                config.registered_model_name,
                                                allowed=config.promote)
                with _told(config, f"the model is registered as {registered.model_uri}, but "
                           "logging the run's charts and model card", None):
                    size = evaluation.cost.model_bytes if evaluation.cost else None
                    onnx = steps.export(run, model, config.enable_onnx_compatible_models,
                                        budget, size)
                    charts = steps.report(run, model, choice, outcome, evaluation,
                                          profile.metric, budget, config.random_state)
                    steps.describe(run, registered, profile, data, choice, evaluation, outcome,
                                   charts, report.to_dicts(), config.target, onnx)
    log.info("time: %s; %.1fs of the %.1f-minute budget", phases, budget.elapsed(),
             config.experiment_timeout_minutes)
    return build_result(config, profile, report, data, outcome, choice, evaluation, registered,
                        run, budget, phases)


# The same flow for the callers that bring more than a config (train, retrain): as parameters of
# the deployed flow these would be fields of its form, where a user has nothing to fill in.
_called_flow = _training_flow(_run)


def _workers(config: AutoMLConfig, profile: Profile, data: SearchData,
             prepared: Prepared | None) -> TrialWorkers:
    spec = WorkerSpec(config.workdir_path / "cache", config.experiment_name, config.concurrency,
                      dask=config.task_runner == "dask")
    if prepared is not None:
        return TrialWorkers(spec, data, prepared.settings, prepared.payload)
    return TrialWorkers(spec, data, steps.trial_settings(config, profile, data))


def _track(config: AutoMLConfig, profile: Profile, data: SearchData, report: GuardrailReport,
           training: pd.DataFrame) -> RunRecords:
    """The run's records. A new run's MLflow run is opened beside the search's first trials; a
    resumed run's first (the search starts from its history), and on Dask, where a submitted
    step would run on a cluster worker, away from this process's tracking store."""
    spec = replace(RunSpec.of(config), **orchestrated_run())
    if config.resume or config.task_runner == "dask":
        return steps.track(spec, profile, data, report, training)
    name = new_study_name(spec.experiment)
    future = steps.track.submit(spec, profile, data, report, training, study_name=name)
    return PendingRun(spec, name, profile.metric.greater_is_better, future)


def _refit_settings(workers: TrialWorkers) -> TrialSettings:
    # The refit runs alone, after the search: it may use every core.
    return replace(workers.settings, n_jobs=available_cores())


@contextmanager
def _closing(records: RunRecords) -> Iterator[RunRecords]:
    """The MLflow parent run ends FINISHED, or FAILED when a later step fails; not when the
    server itself failed (--resume opens the run again), and never in place of the run's own
    error."""
    try:
        yield records
    except ServiceError:
        raise  # the server is what failed: closing the run would only wait for it again
    except BaseException:
        _close(records, ok=False)
        raise
    _close(records, ok=True)


def _close(records: RunRecords, ok: bool) -> None:
    try:
        run: TrackedRun | None = records.tracked()
    except Exception:
        if ok:
            raise
        return  # the tracking step failed too: there is no MLflow run to close
    if run is None:
        return
    try:
        close_run(run, ok=ok)
    except Exception as exc:
        if ok and describe_failure(exc, run.tracker.tracking_uri) is None:
            raise
        log.warning("the MLflow run %s could not be marked %s: %s", run.run_id,
                    "finished" if ok else "failed", str(exc).splitlines()[0][:200])


@contextmanager
def _told(config: AutoMLConfig, what: str, kept: str | None) -> Iterator[None]:
    """A service's or disk's failure inside, told as one sentence (tasks.registry.faults): raised
    as a ServiceError when `kept` says what the run keeps, else a warning (the model is safe)."""
    started = time.monotonic()
    try:
        yield
    except Exception as exc:
        seconds = time.monotonic() - started
        if kept is not None:
            failure = service_failure(exc, what=what, tracking_uri=config.resolved_tracking_uri,
                                      kept=kept, seconds=seconds)
            if failure is None:
                raise
            raise failure from exc
        cause = describe_failure(exc, config.resolved_tracking_uri)
        if cause is None:
            raise
        log.warning("%s failed after %.0f s: %s", what, seconds, cause[0])


def task_runner(config: AutoMLConfig) -> TaskRunner[Any]:  # Any: Prefect's future type
    """Where the trials run: threads of this process that each watch a local worker process, or a
    Dask cluster (an existing one at dask_address, else a local one of worker processes)."""
    if config.task_runner == "dask" and config.training_mode != "distributed":
        # (Distributed training's trials run one after another, each on the whole cluster
        # through its own client: flows.distributed.)
        from prefect_dask.task_runners import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(cluster_kwargs={
            "n_workers": config.concurrency, "threads_per_worker": 1, "processes": True,
            "host": "127.0.0.1", "dashboard_address": None,
        })
    # One thread more than the trials: the tracking step runs beside the first ones.
    return ThreadPoolTaskRunner(max_workers=config.concurrency + 1)


def train(
    config: AutoMLConfig, started_at: float | None = None, shutdown_seconds: float = 0.0,
    warm_start: list[Params] | None = None,
) -> TrainResult:
    """Run the flow on the task runner the config names."""
    return _called_flow.with_options(task_runner=task_runner(config))(
        config, warm_start=warm_start, started_at=started_at, shutdown_seconds=shutdown_seconds
    )
