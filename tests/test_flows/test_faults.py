"""Faults on the way out, on real parts: the MLflow server lost while the model is registered, the
artifact store's disk full, a trial worker killed. Each time: one sentence, nothing half-written
in the registry, and --resume finishes the run from its kept trials."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from faults import CuttingProxy
from mlflow.tracking import MlflowClient
from support import IN_CI, dataset_path

from tasks.errors import DataError
from tasks.registry.tracking.loading import load_logged_model, resolve_registered

pytestmark = pytest.mark.slow

TRAIN = [sys.executable, "-m", "flows.cli", "train", "--data", str(dataset_path("credit_g")),
         "--target", "class", "--allowed-models", "LogisticRegression", "--iterations", "2",
         "--json"]


@pytest.fixture(scope="module")
def env(prefect_api) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
            # A user's own retry settings win over the command's: a lost server is told in
            # seconds here, not after the default quarter of a minute per request.
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}


def train(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TRAIN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def told_once(stderr: str) -> str:
    """The failure's sentence: the last line, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("at", "after"), [
    (b"/model-versions/create", False),  # before the version exists
    (b"/model-versions/create", True),  # the version exists, its aliases and state do not
], ids=["before-the-version", "after-the-version"])
def test_the_server_lost_while_registering(mlflow_server, env, tmp_path, at, after):
    name = f"lost-{'after' if after else 'before'}"
    proxy = CuttingProxy(int(mlflow_server.rsplit(":", 1)[1]), (at,), after=after)
    common = ("--experiment", name, "--model-name", name)
    try:
        failed = train(*common, "--tracking-uri", proxy.url, cwd=tmp_path, env=env)
    finally:
        proxy.close()
    assert any(at in line for line in proxy.requests), proxy.requests[-5:]
    assert failed.returncode == 1, failed.stderr[-3000:]
    sentence = told_once(failed.stderr)
    assert sentence.startswith("error: registering the model failed"), sentence
    assert f"the MLflow server at {proxy.url} could not be reached" in sentence
    assert "the search's 2 trials are kept" in sentence and "--resume" in sentence

    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    left = client.search_model_versions(f"name = '{name}'")
    if after:  # created before the cut: marked pending, holding no alias, skipped by loaders
        (pending,) = (client.get_model_version(name, v.version) for v in left)
        assert pending.tags["automl.registration"] == "pending" and not pending.aliases
    else:
        assert left == []
    with pytest.raises(DataError, match="no versions"):
        resolve_registered(name, "latest", mlflow_server)

    # Without --json: its log says what it kept.
    resumed = subprocess.run([*TRAIN[:-1], *common, "--tracking-uri", mlflow_server, "--resume"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the resumed run's search had ended (iteration limit" in resumed.stderr
    assert "its 2 trials go on to the ensemble" in resumed.stderr  # no trial ran again
    (found,) = client.search_model_versions(f"name = '{name}'")  # the pending one withdrawn
    version = client.get_model_version(name, found.version)
    assert f"models:/{name}/{version.version}" in resumed.stdout
    # Where to look: the tracking server's pages, the experiment's in its runs view.
    links = dict(line.split(": ", 1) for line in resumed.stdout.splitlines()
                 if line.startswith(("mlflow ", "prefect ")))
    assert links["mlflow run"].strip().startswith(f"{mlflow_server}/#/experiments/")
    assert links["mlflow experiment"].strip().endswith("?workflowType=machine_learning")
    assert "/runs/flow-run/" in links["prefect flow run"]
    assert version.tags["automl.registration"] == "complete"
    assert version.aliases == ["champion"]
    model = load_logged_model(f"models:/{name}/latest", mlflow_server)
    rows = __import__("pandas").read_parquet(dataset_path("credit_g")).drop(columns="class")
    assert len(model.predict(rows.head(20))) == 20


def test_the_server_lost_after_the_model_is_registered(mlflow_server, env, tmp_path):
    """The model is in the registry, complete: the run says what it could not log, and exits 0."""
    # The version's last request: its state set complete, after the alias and the decision.
    last = (b"POST /api/2.0/mlflow/registered-models/alias", b"/runs/log-batch",
            b"/model-versions/set-tag")
    proxy = CuttingProxy(int(mlflow_server.rsplit(":", 1)[1]), last, after=True)
    try:
        done = subprocess.run([*TRAIN[:-1], "--experiment", "late", "--model-name", "late",
                               "--tracking-uri", proxy.url], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert ("the model is registered as models:/late/1, but logging the run's charts and model "
            f"card failed after") in done.stderr
    assert f"the MLflow server at {proxy.url} could not be reached" in done.stderr
    client = MlflowClient(mlflow_server, registry_uri=mlflow_server)
    version = client.get_model_version("late", "1")
    assert version.tags["automl.registration"] == "complete" and version.aliases == ["champion"]


def _unshare() -> str | None:
    """Why a private mount namespace (for a small tmpfs) cannot be had here, or None."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m t /mnt"],
                           capture_output=True, text=True)
    if probe.returncode:
        return probe.stderr.strip() or f"exit code {probe.returncode}"
    return None


def test_the_artifact_disk_full_while_registering(env, tmp_path):
    if (why := _unshare()) is not None:
        (pytest.fail if IN_CI else pytest.skip)(f"a private tmpfs cannot be mounted: {why}")
    artifacts = tmp_path / "automl-runs" / "artifacts"
    artifacts.mkdir(parents=True)
    args = " ".join(f"'{a}'" for a in [*TRAIN, "--experiment", "full", "--model-name", "full"])
    # The embedded store keeps its artifacts on a 128 KiB disk: the run's first records fit, the
    # model (about 1 MB) does not. Then the disk grows, as when space is freed, and the run is
    # resumed; both runs in one mount namespace, so the tmpfs outlives the first.
    script = f"""
        mount -t tmpfs -o size=128k automl-full '{artifacts}'
        {args} > first.json 2> first.err; echo $? > first.code
        mount -o remount,size=64m '{artifacts}'
        {args} --resume > second.json 2> second.err; echo $? > second.code
        find '{artifacts}' -name model.pkl > pickles.txt
    """
    subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=tmp_path, env=env, timeout=900,
                   check=True)
    first = (tmp_path / "first.err").read_text()
    assert (tmp_path / "first.code").read_text().strip() == "1", first[-3000:]
    sentence = told_once(first)
    assert sentence.startswith("error: registering the model failed"), sentence
    assert "the disk is full (No space left on device" in sentence
    assert "free space on the disk" in sentence and "--resume" in sentence

    second = (tmp_path / "second.err").read_text()
    assert (tmp_path / "second.code").read_text().strip() == "0", second[-3000:]
    out = json.loads((tmp_path / "second.json").read_text())
    assert out["model_version"] == "1" and out["trials"] == 2  # the first run registered nothing
    assert (tmp_path / "pickles.txt").read_text().count("model.pkl") >= 1


def test_a_trial_worker_killed_mid_trial(env, tmp_path):
    """The trial fails with the worker's fate, a fresh worker takes the next trial, and the run
    registers a model."""
    # Not deterministic: each trial is logged as it finishes, so the test knows the worker is
    # past its start-up and busy with the next one.
    args = [*TRAIN[:8], "--allowed-models", "RandomForest", "--iterations", "3",
            "--max-concurrent", "1", "--no-deterministic", "--no-ensembling", "--experiment", "killed",
            "--model-name", "killed"]
    run = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert run.stderr is not None
    killed = False
    try:
        for line in run.stderr:
            if " trial RandomForest-" in line:
                killed = _kill_busy_worker(run.pid)
                break
        stdout, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert killed, "no busy trial worker was found"
    assert run.returncode == 0, stderr[-3000:]
    assert "after 3 trials (1 failed" in stdout and "registered: models:/killed/1" in stdout
    assert "failed: the trial worker died (exit code -9)" in stderr, stderr[-3000:]


def _kill_busy_worker(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for worker in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if ("trial_process" in " ".join(worker.cmdline())
                        and worker.cpu_percent(interval=0.3) > 50):
                    worker.send_signal(signal.SIGKILL)
                    return True
    return False
