"""Helpers the tests share: the real datasets beside the checkout, and local servers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]  # the checkout
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The shared datasets beside the checkout (AUTOML_TEST_DATASETS points elsewhere).
DATASETS = Path(os.environ.get("AUTOML_TEST_DATASETS", ROOT.parent / "shared" / "datasets"))
# Under CI a test that needs a shared dataset fails instead of skipping (and conftest.py stops the
# run at once when the folder is missing), so a green CI run has tested what it says.
IN_CI = bool(os.environ.get("CI"))
MISSING_DATASETS = (f"the shared datasets are not at {DATASETS}: CI runs from a clone beside "
                    "shared/, which holds datasets/manifest.json and the tables it names")


def dataset_path(name: str) -> Path:
    path = DATASETS / f"{name}.parquet"
    if not path.exists():
        message = f"shared dataset {path} is not beside the checkout"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def load(name: str) -> pd.DataFrame:
    return pd.read_parquet(dataset_path(name))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    """Poll url until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, and its workers (it leads its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


AUTOML = [sys.executable, "-m", "flows.cli"]  # the command, from this checkout's code


def run_cli(*args: str, cwd: Path, api_url: str | None = None) -> subprocess.CompletedProcess:
    """`automl ARGS` in a child process, as a user runs it (PREFECT_API_URL when given)."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run([*AUTOML, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


def copy_store(tracking_uri: str, folder: Path) -> str:
    """A copy of an embedded MLflow store's SQLite file in folder (made if missing): its tracking
    URI. The runs' artifacts stay where they were logged (the file names them by absolute path),
    so a test may register, alias or rename in the copy but not change an artifact."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tracking_uri.removeprefix("sqlite:///"), folder / "mlflow.db")
    return f"sqlite:///{folder / 'mlflow.db'}"
