"""How this package reaches MLflow: one explicit client per store, MLflow's own logging quiet,
values shaped as MLflow takes them."""

from __future__ import annotations

import logging
import os
import time

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from tasks.registry.tracking.seed import seed_sqlite

__all__ = ["Connected", "quiet_mlflow", "text", "metrics", "params", "tags"]


class Connected:
    """An MlflowClient with explicit tracking and registry URIs: the fluent API keeps
    process-wide state (an active run; mlflow.set_tracking_uri even rewrites
    MLFLOW_TRACKING_URI), which is wrong for a worker that runs several flows at once."""

    def __init__(self, tracking_uri: str) -> None:
        quiet_mlflow()
        seed_sqlite(tracking_uri)
        # Without an explicit registry URI the client would use the process-wide one.
        registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


# MLflow's own defaults retry a request for about 4 minutes (7 tries, backoff factor 2) and wait
# 120 s for an answer; with the flow's own retries of its I/O steps, a lost server would hold a
# run for over ten minutes before it says so. These give a restarting server about 15 s per
# request; the user's own settings of the same variables win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


def quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs
    # Against a tracking server MLflow prints each ended run's URL on stdout, which belongs to
    # the command's output (--json, predictions).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    # MLflow logs store creation and migrations at INFO on every new database.
    for name in ("mlflow", "mlflow.sklearn", "mlflow.models", "mlflow.store", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def text(value: object) -> str:
    return str(value)[:6000]


def metrics(values: dict[str, float], step: int = 0, now: int | None = None) -> list[Metric]:
    """MLflow metrics at `step`, stamped `now` (epoch milliseconds; the present when None)."""
    stamp = int(time.time() * 1000) if now is None else now
    return [Metric(k, float(v), stamp, step) for k, v in values.items()]


def params(values: dict[str, object]) -> list[Param]:
    return [Param(k, text(v)) for k, v in values.items()]


def tags(values: dict[str, str]) -> list[RunTag]:
    return [RunTag(k, v) for k, v in values.items()]
