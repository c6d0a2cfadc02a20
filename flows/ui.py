"""What a run shows in the Prefect UI: a name that says what runs, tags, a progress bar while the
trials go, a leaderboard and a summary at the end, and a Failed state that reads as one sentence.

All of it is best effort: the UI is a view of the run, so a failure to draw it is logged and the
run goes on. Outside a flow run (plain function calls in tests) nothing is drawn.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from prefect import artifacts
from prefect.context import FlowRunContext
from prefect.states import Failed

from flows.api import TEMPORARY_MARK
from flows.run_log import run_log
from flows.summary import guardrail_rows, leaderboard_lines, leaderboard_rows, summary_markdown
from tasks.data.redact import public_url
from tasks.errors import AutoMLError, ServiceError

if TYPE_CHECKING:
    from flows.result import TrainResult
    from tasks.config import AutoMLConfig

__all__ = ["run_name", "score_run_name", "label_run", "TrialProgress", "publish_result",
           "publish_markdown", "link_trial_run", "fails_as_sentence", "reported_training",
           "artifact_key", "data_name"]

log = logging.getLogger("automl")

F = TypeVar("F", bound=Callable[..., Any])  # a flow function, whatever its signature
T = TypeVar("T")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())).strip("-")


def data_name(url: str) -> str:
    """The file name of a table's path or URL, without credentials or a query."""
    return PurePosixPath(public_url(url).split("?")[0].rstrip("/")).name or url


def _param(name: str) -> object:
    ctx = FlowRunContext.get()
    return (ctx.parameters or {}).get(name) if ctx else None


def _get(value: object, field: str) -> object:
    return value.get(field) if isinstance(value, dict) else getattr(value, field, None)


def run_name() -> str:
    """flow_run_name of the training flows: '{experiment} on {data file name}'."""
    config = _param("config")
    experiment = _get(config, "experiment_name") or "automl"
    return f"{experiment} on {data_name(str(_get(config, 'training_data') or '?'))}"


def score_run_name() -> str:
    """flow_run_name of batch scoring: '{model} on {data file name}'."""
    model = str(_param("model") or "model")
    shown = data_name(model) if model.endswith(".pkl") else model
    return f"score {shown} on {data_name(str(_param('data') or '?'))}"


def orchestrated_run() -> dict[str, Any]:
    """The MLflow parent run's name and tags from the Prefect flow run it belongs to: its name,
    id and page (not the page of the command's temporary API, gone when the command ends)."""
    if FlowRunContext.get() is None:
        return {}
    from prefect.runtime import flow_run

    links = {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": flow_run.name}
    url = flow_run.ui_url  # "None/flow-runs/..." when no UI is known
    if not os.environ.get(TEMPORARY_MARK) and url and url.startswith("http"):
        links["prefect.flow_run_url"] = url
    return {"run_name": flow_run.name, "links": links}


def label_run(*tags: str | None) -> None:
    """Add tags to the current flow run (the deployment's own tags are kept)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    try:
        merged = list(dict.fromkeys([*(ctx.flow_run.tags or []), *(t for t in tags if t)]))
        ctx.client.update_flow_run(ctx.flow_run.id, tags=merged)
        ctx.flow_run.tags = merged
    except Exception as exc:  # noqa: BLE001 - tags are a view, never a reason to fail
        log.debug("could not tag the flow run: %s", exc)


class TrialProgress:
    """A progress artifact, moved on as each trial is recorded: the larger of the share of
    iterations done and the share of the search's time used."""

    def __init__(self, experiment: str, iterations: int, started: float, deadline: float) -> None:
        self.iterations, self.started, self.deadline = iterations, started, deadline
        self.done = 0
        created = _in_flow(lambda: artifacts.create_progress_artifact(
            progress=0.0, key=artifact_key(experiment, "progress"),
            description=f"{experiment}: search starting"))
        # Prefect types it as the id or a coroutine: this is a sync context, so the id.
        self.id = created if isinstance(created, UUID) else None

    def update(self, label: str, best: str | None) -> None:
        self.done += 1
        if self.id is None:
            return
        span = max(self.deadline - self.started, 1e-9)
        share = max(self.done / self.iterations, (time.monotonic() - self.started) / span)
        text = f"{self.done} of at most {self.iterations} trials; last {label}; best {best or '-'}"
        self._move(min(100.0, 100 * share), text)

    def finish(self) -> None:
        self._move(100.0, f"{self.done} trials done")

    def _move(self, progress: float, text: str) -> None:
        if (artifact := self.id) is not None:
            _in_flow(lambda: artifacts.update_progress_artifact(artifact, progress=progress,
                                                                description=text))


def publish_result(result: TrainResult) -> None:
    """The run's story on its Artifacts tab: the summary (the registry's decision, links to
    MLflow, the time per phase), every trial after the registered model, and the guardrails."""
    key = artifact_key(result.experiment_name)
    _in_flow(lambda: artifacts.create_table_artifact(
        table=leaderboard_rows(result), key=f"{key}-leaderboard",
        description=f"{result.experiment_name}: the registered model, then every trial "
                    f"({result.trials}), best first"))
    if result.guardrails:
        _in_flow(lambda: artifacts.create_table_artifact(
            table=guardrail_rows(result), key=f"{key}-guardrails",
            description=f"{result.experiment_name}: the data checks (Azure's guardrails)"))
    publish_markdown(summary_markdown(result), f"{key}-summary",
                     "The model, the registry's decision, MLflow links, time per phase")


def link_trial_run(task_run_id: UUID | None, url: str, label: str) -> None:
    """The trial's task in Prefect links to its MLflow run: a link artifact of the task run."""
    if task_run_id is None:
        return
    ctx = FlowRunContext.get()
    flow_run_id = ctx.flow_run.id if ctx and ctx.flow_run else None
    _in_flow(lambda: artifacts.LinkArtifact(
        link=url, link_text=f"{label} in MLflow", task_run_id=task_run_id,
        flow_run_id=flow_run_id, description=f"MLflow run of trial {label}").create())


def publish_markdown(markdown: str, key: str, description: str) -> None:
    _in_flow(lambda: artifacts.create_markdown_artifact(markdown=markdown, key=artifact_key(key),
                                                        description=description))


def fails_as_sentence(fn: F) -> F:
    """A user's mistake (or a service's failure after retries) ends the flow run Failed with its
    one sentence as the state message
    (not Prefect's 'Flow run encountered an exception' and a traceback); the caller of the flow
    still gets the AutoMLError raised. Flows have no retries, so it is not tried again."""

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except (AutoMLError, ServiceError) as exc:
            if FlowRunContext.get() is None:
                raise
            return Failed(message=str(exc), data=exc)

    # Prefect builds its parameter model from the signature and resolves string annotations in
    # the wrapper's module: give it the flow's own, resolved.
    wrapper.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def reported_training(fn: F) -> F:
    """A training flow's view: tagged with its experiment (and task, once known), the
    leaderboard and summary published when it is done, mistakes as one sentence."""

    @fails_as_sentence
    @functools.wraps(fn)
    def wrapper(config: AutoMLConfig, *args: object, **kwargs: object) -> object:
        label_run("automl", config.experiment_name, config.task)
        result = fn(config, *args, **kwargs)
        if (ctx := FlowRunContext.get()) is not None:
            label_run(result.task)
            publish_result(result)
            if ctx.flow_run is not None and ctx.flow_run.deployment_id is not None:
                # The command prints the leaderboard itself; a deployed run's Logs tab is the
                # only terminal its user has.
                with run_log():
                    log.info("\n".join(leaderboard_lines(result)))
        return result

    return wrapper  # type: ignore[return-value]


def _in_flow(call: Callable[[], T]) -> T | None:
    """The call's result inside a flow run; None outside one (plain calls in tests) and when
    drawing fails: an artifact is a view, never a reason to fail the run."""
    if FlowRunContext.get() is None:
        return None
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - see above
        log.debug("could not draw a Prefect artifact: %s", exc)
        return None
