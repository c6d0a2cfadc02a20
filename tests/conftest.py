"""Shared fixtures: a Prefect test API, a real MLflow server, a scratch workdir, the misbehaving
families plugin; and, under CI, a run that stops at once when the shared datasets are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import (DATASETS, IN_CI, MISSING_DATASETS, dataset_path, free_port, stop,
                     wait_for_http)

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# As the CLI does: idle OpenMP threads sleep, so tests on a busy machine do not spin-fight.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The tests must not see a user's tracking server.
os.environ.pop("MLFLOW_TRACKING_URI", None)


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not (DATASETS / "manifest.json").exists():
        pytest.exit(MISSING_DATASETS, returncode=3)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """One Prefect test server for the whole session (~7 s), with its home in a temp folder."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def credit_run(prefect_api, tmp_path_factory):
    """One small registered run on credit_g (8 trials, 2 at once, seed 7, a fifth of the rows
    held out), trained once (~21 s) for every test file that only reads a finished run: its
    config and TrainResult. 8 trials reach the portfolio's xgboost (test_automl). Its store is the embedded one in automl-runs/ of its folder, as the command
    makes it. Nothing may change it: a test that registers or moves aliases works on a copy
    (support.copy_store)."""
    from flows.automl import automl_flow
    from tasks.config import parse_config

    workdir = tmp_path_factory.mktemp("credit-run") / "automl-runs"
    workdir.mkdir()
    config = parse_config(training_data=str(dataset_path("credit_g")), target="class",
                          iterations=8, max_concurrent_iterations=2, random_state=7,
                          workdir=str(workdir), experiment_name="result", test_size=0.2)
    return config, automl_flow(config)


@pytest.fixture(scope="module")
def plugin():
    """The misbehaving model families of tests/misbehaving.py, registered in this process and in
    every trial worker it starts (through AUTOML_PLUGINS); gone again after the module."""
    import importlib

    from tasks.models import families

    here = str(Path(__file__).parent)
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(here)
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))
    mp.setenv("AUTOML_PLUGINS", "misbehaving")
    before, lookup = dict(families.FAMILIES), dict(families._LOOKUP)
    importlib.reload(importlib.import_module("misbehaving"))
    yield
    for table, saved in ((families.FAMILIES, before), (families._LOOKUP, lookup)):
        table.clear()
        table.update(saved)
    mp.undo()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a scratch folder so the embedded MLflow store and Optuna journal land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_tracking_uri_leaks(monkeypatch: pytest.MonkeyPatch):
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI; one test must not steer the next."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `mlflow server` on loopback with a SQLite backend: its tracking URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{root / 'mlflow.db'}", "--default-artifact-root", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, cwd=root, stdout=open(root / "server.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
