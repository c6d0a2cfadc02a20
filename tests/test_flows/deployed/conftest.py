"""One deployed stack for the tests of this folder (the deployments' API, their runs in Prefect and
MLflow, the two UIs in a browser): a Prefect server on a free loopback port with a temporary home,
the process work pool, `prefect deploy --all`, a worker and the MLflow UI, the same code as
`make deploy` starts; and, side by side, a good and a bad training run."""

from __future__ import annotations

import httpx
import pytest
from deployed_stack import train_config, trigger, wait

from flows.deploy import Stack, free_port


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    stack = Stack(base / "home", base / "project", free_port(), mlflow_port=free_port(),
                  worker_query_seconds=2)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()  # always: worker first, then the servers


@pytest.fixture(scope="package")
def api(stack):
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
def trained(api, stack):
    """automl-train with a good config and, side by side, one naming a missing target."""
    good = trigger(api, "automl-train/train", {"config": train_config(stack)})
    bad = trigger(api, "automl-train/train",
                  {"config": train_config(stack, target="price", experiment_name="bad")})
    assert good.status_code == 201 and bad.status_code == 201, (good.text, bad.text)
    return (wait(api, stack, good.json()["id"], "COMPLETED"),
            wait(api, stack, bad.json()["id"], "FAILED"))
