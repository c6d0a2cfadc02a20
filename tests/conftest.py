"""Shared fixtures: the real datasets beside the checkout, a Prefect test API, a scratch workdir."""

from __future__ import annotations

import os
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


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a scratch folder so the embedded MLflow store and Optuna journal land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def _no_tracking_uri_leaks(monkeypatch: pytest.MonkeyPatch):
    """mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI; one test must not steer the next."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
