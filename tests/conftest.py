"""Shared fixtures: the real datasets beside the checkout, a Prefect test API, a scratch workdir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# As the CLI does: idle OpenMP threads sleep, so tests on a busy machine do not spin-fight.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The tests must not see a user's tracking server.
os.environ.pop("MLFLOW_TRACKING_URI", None)


def dataset_path(name: str) -> Path:
    path = DATASETS / f"{name}.parquet"
    if not path.exists():
        pytest.skip(f"shared dataset {path} is not beside the checkout")
    return path


def load(name: str) -> pd.DataFrame:
    return pd.read_parquet(dataset_path(name))


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """One Prefect test server for the whole session (~7 s), with its home in a temp folder."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, seconds: float = 90) -> None:
    """Poll url until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a server we started, and its workers (it leads its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


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
