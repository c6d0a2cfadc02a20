"""training_mode="distributed", as Azure automated ML's distributed mode: LightGBM and XGBoost
trained data-parallel on a Dask cluster (the one at dask_address, else a local cluster of
max_nodes worker processes), from Parquet read partition by partition; holdout validation; trials
one after another, each using the whole cluster; every trial an MLflow child run; the best trial's
single-node model registered as any other run's (`.pkl` and MLflow model).

What it leaves out, on purpose: cross-validation (every fold would train on the whole cluster
again), ensembles and a refit on all rows (the best trial's model is the final model, trained on
the training side), featurization beyond categories and numbers (dates are left out), the charts
and model card (they need the table on one machine).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.result import TrainResult
from flows.ui import orchestrated_run
from tasks.budget import REGISTER_SECONDS
from tasks.data.credentials import storage_options
from tasks.distributed.boosting import FAMILIES, fit_trial, predict_parts
from tasks.distributed.cluster import cluster
from tasks.distributed.data import SplitSizes, load_table, read_parquet, release_memory
from tasks.distributed.registry import register_model
from tasks.distributed.rounds import MIN_ROUNDS, Rounds
from tasks.errors import ConfigError, SearchError, first_line
from tasks.metrics import default_metric, get_metric, score_all
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.outcome import SearchOutcome

if TYPE_CHECKING:

    import pandas as pd
    from distributed import Client

    from tasks.budget import Budget
    from tasks.config import AutoMLConfig
    from tasks.distributed.boosting import Fitted
    from tasks.distributed.data import ClusterTable
    from tasks.metrics import Metric
    from tasks.registry.tracking import Tracker
    from tasks.types import Array, Params

__all__ = ["distributed_run"]

log = logging.getLogger("automl")


def distributed_run(config: AutoMLConfig, budget: Budget) -> TrainResult:
    """The whole distributed run, inside the training flow."""
    phases: dict[str, float] = {}
    started = time.monotonic()
    with cluster(config) as client:
        phases["cluster"] = time.monotonic() - started
        table = _ingest(config, client)
        phases["ingest"] = time.monotonic() - started - phases["cluster"]
        metric = get_metric(config.primary_metric or default_metric(table.task), table.task)
        families = _families(config, table.task)
        threads = sum(client.nthreads().values())
        log.info("distributed: %d workers (%d threads); %s train, %s validation%s rows; "
                 "families %s", len(client.nthreads()), threads, f"{table.rows['train']:,}",
                 f"{table.rows['valid']:,}",
                 f", {table.rows['test']:,} test" if "test" in table.rows else "",
                 ", ".join(families))
        tracker, run_id = _open_run(config, table, metric)
        ok = False
        try:
            search_started = time.monotonic()
            outcome, model = _search(config, client, table, metric, families, budget, tracker,
                                     run_id, threads)
            phases["search"] = time.monotonic() - search_started
            best = outcome.best
            from tasks.distributed.model import final_pipeline

            pipeline = final_pipeline(table, model.model)
            final_started = time.monotonic()
            validation = _metrics(table.task, table.y_valid, model.predictions, table)
            test = None
            if table.test is not None and table.y_test is not None:
                test = _metrics(table.task, table.y_test,
                                predict_parts(client, model.model, table.test), table)
            phases["evaluate"] = time.monotonic() - final_started
            register_started = time.monotonic()
            registered = register_model(config, client, tracker, run_id, pipeline, table, metric,
                                   test[metric.name] if test else validation[metric.name],
                                   "test" if test else "validation")
            phases["register"] = time.monotonic() - register_started
            tracker.log_summary(run_id, {**{f"best_{k}": v for k, v in validation.items()},
                                         **{f"test_{k}": v for k, v in (test or {}).items()},
                                         "trials": len(outcome.results)},
                                {"best_model": best.candidate.label,
                                 "stop_reason": outcome.stop_reason}, _leaderboard(outcome,
                                                                                   metric))
            ok = True
        finally:
            tracker.finish(run_id, ok=ok)
    decision = registered.decision
    log.info("distributed: best %s %s=%.4f after %d trials; registered %s",
             best.candidate.label, metric.name, validation[metric.name], len(outcome.results),
             registered.model_uri)
    return TrainResult(
        run_id=run_id, experiment_name=config.experiment_name, task=table.task,
        validation=f"holdout ({table.rows['valid']:,} rows)",
        registered_model_name=registered.name, model_version=registered.version,
        model_uri=registered.model_uri, pkl_uri=registered.pkl_uri,
        best_model=best.candidate.label, best_family=best.candidate.family,
        best_params={"family": best.candidate.family, **best.candidate.params,
                     **best.refit_params},
        primary_metric=metric.name, primary_metric_value=validation[metric.name],
        metrics=validation, test_metrics=test, trials=len(outcome.results),
        failed_trials=outcome.failed, stop_reason=outcome.stop_reason,
        wall_seconds=round(budget.elapsed(), 2), tracking_uri=config.resolved_tracking_uri,
        promoted=bool(decision and decision.promoted),
        aliases=[decision.alias] if decision and decision.alias else [],
        registry=decision.to_dict() if decision else None,
        roles={"categorical": table.features[:table.n_categorical],
               "numeric": table.features[table.n_categorical:],
               "dropped": sorted(table.dropped)},
        leaderboard=outcome.leaderboard(metric),
        phase_seconds={k: round(v, 2) for k, v in phases.items()},
        concurrency=1, threads_per_trial=threads, experiment_id=tracker.experiment_id,
        members=[{"model": best.candidate.label, "weight": 1.0}],
    )


def _families(config: AutoMLConfig, task_type: str) -> list[str]:
    """The distributed families the knobs allow (any of the registry's spellings of a name)."""
    from tasks.models.families import resolve_families

    chosen = resolve_families(task_type, config.allowed_models, config.blocked_models)
    families = [f for f in FAMILIES if f in chosen]
    if not families:
        raise ConfigError(f"distributed training has only {', '.join(FAMILIES)}, and "
                          "allowed_models / blocked_models leave neither; allow one of them")
    if config.allowed_models and (left := sorted(set(chosen) - set(FAMILIES))):
        log.info("distributed: %s not trained in distributed mode", ", ".join(left))
    return families


@task(name="ingest", cache_policy=NO_CACHE)
def _ingest(config: AutoMLConfig, client: Client) -> ClusterTable:
    options = storage_options(config.storage_options, config.storage_secret)
    # A table in memory (the Python API's fit): two partitions per worker.
    partitions = 2 * len(client.nthreads())
    frame = read_parquet(config.training_data, options, "training_data", partitions)
    validation = (read_parquet(config.validation_data, options, "validation_data", partitions)
                  if config.validation_data else None)
    test = (read_parquet(config.test_data, options, "test_data", partitions)
            if config.test_data else None)
    sizes = SplitSizes(config.validation_size, config.test_size, config.random_state)
    return load_table(client, frame, config.target, config.task, sizes, validation, test)


def _open_run(config: AutoMLConfig, table: ClusterTable, metric: Metric) -> tuple[Tracker, str]:
    from tasks.registry.run import RunSpec
    from tasks.registry.tracking import Tracker

    spec = replace(RunSpec.of(config), **orchestrated_run())
    spec.workdir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(spec.tracking_uri, spec.experiment, spec.artifact_root)
    params = {**spec.params, "task": table.task, "primary_metric": metric.name,
              "validation_scheme": "holdout", "n_rows": sum(table.rows.values())}
    parent = tracker.start_parent(
        spec.run_name or f"{spec.experiment}-{time.strftime('%Y%m%d-%H%M%S')}", params,
        {"task": table.task, "automl.training_data": str(params["training_data"]),
         "automl.training_mode": "distributed", **spec.links})
    return tracker, parent.run_id


def _search(config: AutoMLConfig, client: Client, table: ClusterTable, metric: Metric,
            families: list[str], budget: Budget, tracker: Tracker, run_id: str,
            threads: int) -> tuple[SearchOutcome, Fitted]:
    """Trials one after another until iterations, the budget, the exit score or early stopping
    ends the search."""
    import optuna

    from tasks.search.sampling import FAMILY, make_sampler, suggest_param, tell_result
    from tasks.search.spaces import parse_distributed_spaces

    spaces = parse_distributed_spaces()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if metric.greater_is_better else "minimize",
        sampler=make_sampler(config.random_state, config.sampler))
    # Each family's defaults first, the families taking turns.
    queue = [{FAMILY: family, **{f"{family}__{k}": v for k, v in point.items()}}
             for i in range(max(len(spaces[f].defaults) for f in families))
             for family in families for point in spaces[family].defaults[i:i + 1]]
    rounds = Rounds(table.rows["train"] * (len(table.train.columns) - 1), threads)
    results: list[TrialResult] = []
    best: TrialResult | None = None
    best_model: Fitted | None = None  # only the best trial's model is kept
    since_best, reason = 0, "iterations"
    while len(results) < config.iterations:
        if config.enable_early_stopping and since_best >= config.early_stopping_patience:
            reason = "early_stopping"
            break
        if queue:
            study.enqueue_trial(queue.pop(0))
        trial = study.ask()
        family = str(trial.suggest_categorical(FAMILY, families))
        params = {name: suggest_param(trial, f"{family}__{name}", dist)
                  for name, dist in spaces[family].params.items()}
        fixed = cast("Params", spaces[family].fixed)
        candidate = Candidate(trial.number, family, {**fixed, **params})
        # Until a model exists, a trial may use the time until there is just enough left to
        # register it (as on one machine), and runs at least MIN_ROUNDS rounds.
        until = budget.search_deadline if best is not None else budget.end - REGISTER_SECONDS
        affordable = rounds.affordable(family, candidate.params, until - time.monotonic())
        if best is None:
            affordable = max(affordable, MIN_ROUNDS)
        elif affordable < MIN_ROUNDS:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            reason = "time_budget"
            break
        # quote: Prefect would otherwise walk the client and the table looking for futures.
        result, fitted = _trial.with_options(task_run_name=candidate.label)(  # type: ignore[call-overload]
            quote(client), candidate, quote(table), metric, affordable, config.random_state,
            max(1, threads // max(len(client.nthreads()), 1)))
        release_memory(client)  # what the trial freed, before the next one's peak
        if fitted is not None:
            rounds.observe(family, fitted)
        results.append(result)
        improved = result.ok and (best is None or metric.better(result.metrics[metric.name],
                                                                best.metrics[metric.name]))
        if improved:
            best, best_model = result, fitted
        since_best = 0 if improved else since_best + 1
        tracker.log_trial(run_id, result, {} if best is None else {
            f"best_so_far_{metric.name}": best.metrics[metric.name]}, len(results) - 1)
        tell_result(study, trial, result, metric.name, None)
        if (best is not None and config.experiment_exit_score is not None
                and not metric.better(config.experiment_exit_score, best.metrics[metric.name])):
            reason = "exit_score"
            break
    if best is None or best_model is None:
        first = next((r.error for r in results if r.error), "none recorded")
        raise SearchError(f"all {len(results)} distributed trials failed, so no model was "
                          f"registered; first error: {first}")
    return SearchOutcome(tuple(results), best, reason, families=tuple(families)), best_model


@task(name="trial", cache_policy=NO_CACHE)
def _trial(client: Client, candidate: Candidate, table: ClusterTable, metric: Metric,
           rounds: int, seed: int, threads: int) -> tuple[TrialResult, Fitted | None]:
    """One trial on the whole cluster; a failure is a result, as on one machine."""
    started = time.time()
    params = dict(candidate.params)
    try:
        fitted = fit_trial(client, candidate.family, params, table, metric, rounds, seed, threads)
    except Exception as exc:  # noqa: BLE001 - a failed trial is recorded, the search goes on
        log.warning("distributed: %s failed: %s", candidate.label, first_line(exc))
        return TrialResult(candidate, ok=False, error=f"{type(exc).__name__}: {exc}",
                           reason="error", started_at=started, ended_at=time.time(),
                           fit_seconds=time.time() - started), None
    scores = _metrics(table.task, table.y_valid, fitted.predictions, table)
    log.info("distributed: %s %s %.4f in %.1f s, %d of %d rounds kept", candidate.label,
             metric.name, scores.get(metric.name, float("nan")), fitted.fit_seconds,
             fitted.rounds, fitted.trained_rounds)
    return TrialResult(
        candidate, ok=metric.name in scores, metrics=scores, fit_seconds=fitted.fit_seconds,
        refit_params={"n_estimators": fitted.rounds}, started_at=started, ended_at=time.time(),
        error=None if metric.name in scores else f"{metric.name} is undefined on these rows",
    ), fitted


def _metrics(task_type: str, y: Array, pred: Array, table: ClusterTable) -> dict[str, float]:
    return score_all(task_type, y, pred, None, table.y_range)


def _leaderboard(outcome: SearchOutcome, metric: Metric) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(outcome.leaderboard(metric))
