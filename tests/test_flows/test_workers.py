"""The worker pool inside real searches: hard limits, a Dask cluster, a kill -9 and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from support import dataset_path

from flows.automl import train
from tasks.config import parse_config
from tasks.search.memory import run_rss_mb
from tasks.search.study import has_all_params, open_storage

pytestmark = pytest.mark.slow


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def trial_runs(config) -> list:
    client = MlflowClient(config.resolved_tracking_uri)
    experiment = client.get_experiment_by_name(config.experiment_name)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_timeout_memory_and_error_trials_fail_alone(prefect_api, plugin, workdir):
    config = parse_config(
        training_data=str(dataset_path("blood_transfusion")), target="donated_march_2007",
        allowed_models=["LogisticRegression", "Sleepy", "Hungry", "Raising"], iterations=6,
        iteration_timeout_minutes=0.25, max_memory_mb_per_iteration=1000,
        max_concurrent_iterations=2,
        experiment_name="limits", workdir=str(workdir),
    )
    result = train(config)
    assert result.model_uri.startswith("models:/limits/")
    reasons = {r.data.tags.get("failure_reason") for r in trial_runs(config)}
    assert {"timeout", "memory", "error"} <= reasons
    storage = open_storage(None, config.workdir_path)
    (name,) = optuna.get_all_study_names(storage)
    failed = [t for t in optuna.load_study(study_name=name, storage=storage).trials
              if t.state == TrialState.FAIL]
    assert {"timeout", "memory", "error"} <= {t.user_attrs["reason"] for t in failed}
    assert result.best_family == "logistic_regression"
    # Each trial's Prefect task says how it went: a score as MLflow logged it, or why none.
    shown = trial_tasks(result.flow_run_id)
    scores = {r.info.run_name: r.data.metrics.get("AUC_weighted") for r in trial_runs(config)}
    for name, (state, message) in shown.items():
        assert state == "COMPLETED", (name, state)  # a failed trial is a result, not a failure
        family = name.split("-")[0]
        if family == "LogisticRegression":
            assert message.startswith(f"AUC_weighted {scores[name]:.4g} in "), message
            assert "C=" in message  # its parameters
        else:
            assert message.startswith("failed"), message
    reasons = {message.split(":")[0] for _, message in shown.values()}
    assert {"failed (timeout)", "failed (memory)", "failed (error)"} <= reasons


def test_the_run_memory_limit_stops_a_hungry_trial_and_keeps_its_family_out(prefect_api, plugin,
                                                                            workdir):
    # max_memory_mb counts this process (the flow's) and the workers it starts: room for them
    # and for a little more, not for the Hungry family's 3 GB.
    limit = round(run_rss_mb() + 1500)
    config = parse_config(
        training_data=str(dataset_path("blood_transfusion")), target="donated_march_2007",
        allowed_models=["LogisticRegression", "Hungry"], iterations=14, deterministic=False,
        max_memory_mb=limit, max_concurrent_iterations=1, experiment_name="run-memory",
        workdir=str(workdir),
    )
    result = train(config)
    assert result.model_uri.startswith("models:/run-memory/")
    hungry = [r.data.tags for r in trial_runs(config) if r.info.run_name.startswith("Hungry")]
    stopped = [t for t in hungry if t.get("failure_reason") == "memory"]
    skipped = [t for t in hungry if t["status"] == "skipped"]
    assert stopped and skipped, hungry
    assert all(f"max_memory_mb={limit}" in t["error"] for t in stopped + skipped)
    (check,) = [c for c in result.guardrails if c["name"] == "skipped trials"]
    assert check["status"] == "alerted" and "Hungry" in check["detail"], check


def trial_tasks(flow_run_id: str) -> dict[str, tuple[str, str]]:
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
    return {r.name: (r.state.type.value, r.state.message or "") for r in runs
            if r.name.split("-")[0] in ("LogisticRegression", "Sleepy", "Hungry", "Raising")}


def test_a_dask_cluster_of_two_worker_processes_runs_the_search(prefect_api, workdir):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        config = parse_config(
            training_data=str(dataset_path("credit_g")), target="class", iterations=6,
            allowed_models=["LightGBM", "LogisticRegression"], max_concurrent_iterations=2,
            task_runner="dask", dask_address=cluster.scheduler_address, experiment_name="dask",
            workdir=str(workdir),
        )
        result = train(config)
        dask_pids = set(client.run(os.getpid).values())
        leftover = client.run(lambda: len(psutil.Process().children(recursive=True)))
        published = client.list_datasets()
    # The payload's file is removed once the cluster holds it: the trials' data came from the
    # cluster, not from a path the workers share (each wrote its own copy, gone at the end).
    assert result.model_uri.startswith("models:/dask/") and result.trials == 6
    assert not list((workdir / "cache").glob("*.pkl")) and not published, published
    supervisors = {int(r.data.tags["worker"].rsplit(":", 1)[1]) for r in trial_runs(config)}
    assert supervisors and supervisors <= dask_pids, (supervisors, dask_pids)
    assert not any(leftover.values()), f"trial processes outlived the run: {leftover}"


def test_a_run_killed_mid_search_resumes_without_repeating_a_trial(prefect_api, workdir):
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    args = [sys.executable, "-m", "flows.cli", "train", "--data", str(dataset_path("credit_g")),
            "--target", "class", "--iterations", "10", "--max-concurrent", "2",
            "--allowed-models", "LightGBM,LogisticRegression,RandomForest",
            "--no-early-stopping", "--experiment", "resumable", "--json"]
    storage = open_storage(None, workdir / "automl-runs")

    def study():
        (name,) = optuna.get_all_study_names(storage)
        return optuna.load_study(study_name=name, storage=storage)

    first = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                trials = study().trials
            except ValueError:  # no study yet
                continue
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 3 and any(
                    t.state == TrialState.RUNNING and has_all_params(t) for t in trials):
                break
        workers = psutil.Process(first.pid).children(recursive=True)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    before = {t.number: t for t in study().trials}
    done = {n for n, t in before.items() if t.state in (TrialState.COMPLETE, TrialState.FAIL)}
    # A trial killed while being asked (some parameters missing) never ran, so is not retried.
    running = {n for n, t in before.items()
               if t.state == TrialState.RUNNING and has_all_params(t)}
    assert len(done) >= 3 and running, before
    _, alive = psutil.wait_procs(workers, timeout=15)
    alive = [p for p in alive if _running(p)]  # a container's pid 1 may leave zombies unreaped
    assert not alive, f"trial workers outlived the killed run: {alive}"

    again = subprocess.run([*args, "--resume"], cwd=workdir, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    out = json.loads(again.stdout)
    after = study().trials
    by_number = {t.number: t for t in after}
    for n in done:  # finished trials were not run again
        assert by_number[n].datetime_complete == before[n].datetime_complete
    for n in running:  # running ones failed, and their configurations ran again
        assert by_number[n].user_attrs["reason"] == "interrupted"
        assert any(t.params == before[n].params and t.number > n and
                   t.state == TrialState.COMPLETE for t in after), [
            (t.number, t.state.name, t.user_attrs.get("error"), t.params) for t in after]
    counted = [t for t in after if t.user_attrs.get("reason") != "interrupted"]
    assert len(counted) == 10 == out["trials"]

    config = parse_config(training_data="x", target="class", experiment_name="resumable",
                          workdir=str(workdir / "automl-runs"))
    numbers = [r.data.tags["trial_number"] for r in trial_runs(config)]
    assert len(numbers) == len(set(numbers)) == 10, sorted(numbers)
    client = MlflowClient(config.resolved_tracking_uri)
    versions = client.search_model_versions("name = 'resumable'")
    assert len(versions) == 1 and str(out["model_version"]) == str(versions[0].version)


def test_the_workers_cut_off_follows_the_deadline_both_ways():
    from flows.workers import CutOff

    told: list[float] = []
    cut_off = CutOff(told.append)
    now = time.monotonic()
    cut_off.follow(now + 30)
    cut_off.follow(now + 30.5)  # a jitter under a second is not passed on
    cut_off.follow(now + 20)  # a costlier best trial: earlier
    cut_off.follow(now + 28)  # a cheaper one: later again, or new trials would stop at once
    # Told as epoch times: the worker processes share the clock, not time.monotonic().
    assert [round(t - time.time()) for t in told] == [30, 20, 28]
