"""What `automl train` shows on a terminal: its first line at once (what it is about to do), one
status line under the run's log while it runs (elapsed and remaining time, trials done, failed
and pruned, the best score so far), and at the end where to look at the run.

The status line is drawn on a terminal only; in a pipe or a CI log the run's lines stay plain.
It follows the search by its log: the loop (tasks.search.loop._log_progress) logs one line per
finished trial, in this process, whatever runs the trials.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flows.precheck import DEFAULT_METRICS, TASKS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console
    from rich.text import Text

    from flows.result import TrainResult
    from tasks.config import AutoMLConfig

__all__ = ["first_line", "RunStatus", "run_links", "TRIAL_LINES"]

# The search's lines for a finished trial (tasks.search.loop._log_progress and run_search), by
# their format: what each says happened (tests/test_flows/test_status.py holds them to the loop).
TRIAL_LINES = {
    "trial %s %s=%.4f (best %.4f, %s) fit %.1fs": "ok",
    "trial %s %s": "pruned",  # or "not started: ..." (the memory limit)
    "trial %s %s=%.4f screened on %s rows, fit %.1fs": "screened",
    "trial %s failed: %s": "failed",
    "trial %s repeats trial %d: its result stands": "repeat",
}


def first_line(config: AutoMLConfig) -> str:
    """What the run is about to do: the data, the target, the task, the metric, the budget."""
    from tasks.data.redact import public_url

    task = config.task or "inferred from the target"
    if config.primary_metric:
        metric = config.primary_metric
    elif config.task:
        metric = DEFAULT_METRICS[config.task]
    else:
        metric = " or ".join(f"{DEFAULT_METRICS[t]} ({t})" for t in TASKS)
    return (f"training on '{public_url(config.training_data)}': target '{config.target}', "
            f"task {task}, metric {metric}, at most {config.iterations} trials in "
            f"{_span(config.experiment_timeout_minutes * 60)}")


def _span(seconds: float) -> str:
    """A budget as people say it: 30 s, 5 min, 1 min 30 s, 6 h."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunStatus(logging.Handler):
    """The `automl` log through a rich console, with the run's status line under it while
    shown() lasts: the log's lines print above the line, which rich redraws in place."""

    def __init__(self, console: Console, started: float) -> None:
        super().__init__(logging.INFO)
        self.console, self.started = console, started  # started: epoch seconds
        self.iterations, self.budget = 0, None  # type: tuple[int, float | None]
        self.done = self.failed = self.pruned = self.screened = 0
        self.best: tuple[str, float, str] | None = None  # metric, score, trial

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._count(record)
            self.console.print(self.format(record), markup=False, highlight=False,
                               soft_wrap=True)
        except Exception:  # noqa: BLE001 - the terminal's view must never fail the run
            self.handleError(record)

    def _count(self, record: logging.LogRecord) -> None:
        outcome = TRIAL_LINES.get(str(record.msg))
        if outcome is None or not isinstance(record.args, tuple):
            return
        if outcome == "pruned":  # "trial %s %s" says other things too
            said = str(record.args[-1])
            if said.startswith("not started"):
                outcome = "skipped"
            elif not said.startswith("pruned"):
                return
        self.done += 1
        self.screened += outcome == "screened"
        self.failed += outcome == "failed"
        self.pruned += outcome == "pruned"
        if outcome == "ok":
            _, metric, _, best, label, _ = record.args
            self.best = (str(metric), float(str(best)), str(label))

    def __rich__(self) -> Text:
        from rich.text import Text

        elapsed = time.time() - self.started
        clock = f"elapsed {_clock(elapsed)}"
        if self.budget is not None:
            clock += f", {_clock(self.budget - elapsed)} left"
        best = "best -" if self.best is None else (
            f"best {self.best[0]} {self.best[1]:.4f} ({self.best[2]})")
        screened = f", {self.screened} screened" if self.screened else ""
        return Text(f"{clock} | trials {self.done}/{self.iterations} ({self.failed} failed, "
                    f"{self.pruned} pruned{screened}) | {best}", style="bold", no_wrap=True,
                    overflow="ellipsis")

    @contextmanager
    def shown(self, config: AutoMLConfig) -> Iterator[None]:
        """The status line under the log until the run returns (gone then: the report follows).
        The time left is shown when the command was given a budget."""
        from rich.live import Live

        self.iterations = config.iterations
        given = "experiment_timeout_minutes" in config.model_fields_set
        self.budget = config.experiment_timeout_minutes * 60 if given else None
        # stdout is the report's (and --json's): only stderr's stray writes go above the line.
        with Live(self, console=self.console, transient=True, refresh_per_second=2,
                  redirect_stdout=False):
            yield


def run_links(result: TrainResult) -> list[tuple[str, str]]:
    """Where to look at the run: its MLflow pages (or the command that serves an embedded store)
    and its Prefect flow run's page, unless that was the command's temporary API (gone now)."""
    from flows.api import TEMPORARY_MARK
    from flows.summary import mlflow_links

    # An embedded store has no pages: the command that serves it, to run.
    links = [(f"mlflow {name}", target) if name != "store" else
             ("see the runs", target.replace("`", "").removesuffix(" serves it"))
             for name, target in mlflow_links(result).items()]
    if result.flow_run_id and not os.environ.get(TEMPORARY_MARK):
        from prefect.utilities.urls import url_for

        page = url_for("flow-run", obj_id=result.flow_run_id)
        if page and page.startswith("http"):
            links.append(("prefect flow run", page))
    return links
