"""The deployed stack's tests share one stack (tests/test_flows/deployed/conftest.py): these are
the calls they make to it, as the UI and the CLI make them."""

from __future__ import annotations

import time
from uuid import UUID

import httpx
import psutil
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings
from support import dataset_path

__all__ = ["TARGET", "artifacts", "call", "deployment", "run_logs", "train_config",
           "trigger", "wait"]

TARGET = "donated_march_2007"
WAIT_SECONDS = 300


def deployment(api, name: str) -> dict:
    response = call(api, "get", f"/deployments/name/{name}")
    response.raise_for_status()
    return response.json()


def trigger(api, name: str, parameters: dict) -> httpx.Response:
    url = f"/deployments/{deployment(api, name)['id']}/create_flow_run"
    return call(api, "post", url, json={"parameters": parameters})


def call(api, method: str, url: str, **kwargs) -> httpx.Response:
    """A busy SQLite-backed server answers 503 now and then; Prefect's own client retries it."""
    for attempt in range(10):
        response = api.request(method, url, **kwargs)
        if response.status_code not in (429, 503):
            return response
        time.sleep(0.5 * (attempt + 1))
    return response


def wait(api, stack, run_id: str, expected: str) -> dict:
    end = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < end:
        run = call(api, "get", f"/flow_runs/{run_id}").json()
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    state = run["state"]
    assert state["type"] == expected, (
        f"flow run {run['name']} ended {state['type']}: {state['message']}\n"
        f"--- worker log ---\n{stack.log_tail('worker')}"
    )
    return run


def artifacts(api, run_id: str) -> dict[str, dict]:
    found = call(api, "post", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    return {a["key"]: a for a in found.json()}


def run_logs(stack, run_id: str) -> list:
    """The flow run's log lines as its Logs tab reads them, oldest first: once the worker's flow
    run processes are gone, as a process sends its last lines when it exits."""
    end = time.monotonic() + WAIT_SECONDS
    while psutil.Process(stack.pids["worker"]).children() and time.monotonic() < end:
        time.sleep(0.5)
    only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(run_id)]))
    with temporary_settings({PREFECT_API_URL: stack.api_url}), \
            get_client(sync_client=True) as client:
        return sorted(client.read_logs(only, limit=200), key=lambda log: log.timestamp)


def train_config(stack, **overrides) -> dict:
    return {
        "training_data": str(dataset_path("blood_transfusion")), "target": TARGET,
        "iterations": 3, "allowed_models": ["LogisticRegression", "DecisionTree"],
        "validation_size": 0.2, "max_concurrent_iterations": 1, "enable_ensembling": False,
        "experiment_name": "blood", "model_name": "blood-model",
        # The deployments' MLflow store (job variables) is the project's automl-runs.
        "workdir": str(stack.runs / "automl-runs"), **overrides,
    }
