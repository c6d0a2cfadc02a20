"""The `automl` command line: `automl train ...` and `automl predict ...`.

Exit codes are a contract a pipeline chains on: 0 a model was registered (or the predictions
written); 2 the input or configuration is wrong (one sentence, before any training); 3 the run
was valid but produced no model in its budget (one sentence: why, and what to change); 1 the run
could not finish: a server or disk it writes to failed (one sentence: what, and that --resume
finishes it) or an internal error (one line); either way the file that holds the full traceback
is named. Never a traceback on the terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, NoReturn

from flows.arguments import EXIT_USER_ERROR, parser

if TYPE_CHECKING:  # the command imports what it needs once it knows which command runs

    import argparse

    from rich.console import Console

    from flows.result import TrainResult
    from flows.status import RunStatus
    from tasks.config import AutoMLConfig

__all__ = ["main", "run"]

EXIT_INTERNAL_ERROR = 1
EXIT_NO_MODEL = 3
SHOWN_TRIALS = 10  # leaderboard rows printed; --json has every trial


def _quiet_runtime(verbose: bool) -> None:
    """Set before Prefect is imported: no telemetry, and no console chatter unless asked.

    Also before any OpenMP library loads: idle OpenMP threads sleep instead of spinning. On a
    busy machine spinning threads fight for the cores; measured on 2 shared cores (load 6-9),
    one 5-fold LightGBM trial took 17.8 s spinning and 1.2 s passive (HistGradientBoosting 36 s
    and 2.4 s). A sleeping team is slow to wake, so under that policy every OpenMP team of this
    process is one thread (as families.openmp_threads gives the models): the ensemble's
    meta-learner took 9.9 s with two passive threads, 1.5 s with one (the trial workers set
    their own count).
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "automl")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
        warnings.filterwarnings("ignore")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # the budget counts from here: imports and start-up are part of the run
    args = parser().parse_args(argv)
    _quiet_runtime(args.verbose)
    from rich.console import Console

    from tasks.errors import AutoMLError, SearchError, ServiceError

    quiet = getattr(args, "json", False)
    console = Console(stderr=True)
    status = _progress_to(quiet, console, started)
    try:
        if args.command == "train":
            return _train(args, Console(stderr=quiet), status, started)
        from flows.predict_command import predict

        return predict(args, console)
    except SearchError as exc:  # before AutoMLError, its parent
        console.print(f"[bold red]no model:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_NO_MODEL
    except AutoMLError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_USER_ERROR
    except ServiceError as exc:  # the run could not finish: a server or disk failed
        where = _save_traceback(exc, getattr(args, "workdir", None))
        console.print(f"[bold red]error:[/] {exc} (details: {where})", highlight=False,
                      soft_wrap=True)
        return EXIT_INTERNAL_ERROR
    except Exception as exc:  # noqa: BLE001 - the contract: one line and exit 1, never a traceback
        where = _save_traceback(exc, getattr(args, "workdir", None))
        first = (str(exc).splitlines() or [""])[0][:300]
        console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {first}; the full "
                      f"traceback is in {where}", highlight=False, soft_wrap=True)
        if args.verbose:
            console.print_exception()
        return EXIT_INTERNAL_ERROR


def _save_traceback(exc: BaseException, workdir: str | None) -> str:
    """The traceback in WORKDIR/logs/ (beside the run's MLflow store), else the temp folder."""
    import tempfile
    import traceback
    from pathlib import Path

    text = "".join(traceback.format_exception(exc))
    name = f"automl-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (Path(workdir or "automl-runs") / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text)
            return str((folder / name).resolve())
        except OSError:
            continue
    return "nowhere (no writable folder); rerun with -v to see it"


def _progress_to(quiet: bool, console: Console, started: float) -> RunStatus | None:
    """One plain line per event on stderr, readable in a CI log or a pipe; on a terminal the
    same lines through rich, which can keep a status line under them (the RunStatus returned)."""
    log = logging.getLogger("automl")
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    # The stream itself, not rich's guess: FORCE_COLOR (set in some CI) makes rich see a terminal.
    terminal = not quiet and sys.stderr.isatty() and console.is_terminal
    status: RunStatus | None = None
    handler: logging.Handler
    if terminal and not console.is_dumb_terminal:
        from flows.status import RunStatus

        handler = status = RunStatus(console, started)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.propagate = False
    return status


def _train(args: argparse.Namespace, out: Console, status: RunStatus | None,
           started: float) -> int:
    from flows.precheck import check_columns, check_names
    from tasks.config import parse_config

    knobs = {k: v for k, v in vars(args).items() if k not in ("command", "json", "verbose")}
    config = parse_config(**knobs)
    check_names(config)  # a wrong metric or family is refused here, before Prefect starts
    if status is not None:
        # On a terminal, what the run is about to do, at once (0.3-0.5 s; the flow's first line
        # came after 7-20 s), and the status line under the log from then on. A pipe keeps its
        # plain lines, and a refusal there its one line.
        from flows.status import first_line

        logging.getLogger("automl").info(first_line(config))
    with status.shown(config) if status is not None else contextlib.nullcontext():
        check_columns(config)  # a wrong column is refused from the header, before Prefect starts
        result = _run(config, started)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
    else:
        _report(result, out)
    return 0


_SPEEDS = "predict ms/1k rows / 1 row"


def _report(result: TrainResult, console: Console) -> None:
    from rich.table import Table

    from flows.status import run_links

    table = Table(title=f"Leaderboard ({result.primary_metric}, {result.validation})")
    for column in ("rank", "model", result.primary_metric, "fit s", _SPEEDS, "status"):
        # The predict times share a narrow column: on 80 columns a column of their own cut the
        # model names short.
        table.add_column(column, justify="left" if column in ("model", "status") else "right",
                         max_width=12 if column == _SPEEDS else None)
    for row in result.leaderboard[:SHOWN_TRIALS]:
        value = row[result.primary_metric]
        speeds = " / ".join("-" if ms is None else f"{ms:.3g}" for ms in (
            row.get("predict_ms_per_1k_rows"), row.get("predict_ms_per_row")))
        table.add_row(str(row["rank"]), str(row["model"]),
                      "-" if value is None else f"{value:.4f}", f"{row['fit_seconds']:.2f}",
                      speeds, str(row["status"]))
    console.print(table)
    if (hidden := len(result.leaderboard) - SHOWN_TRIALS) > 0:
        console.print(f"... and {hidden} more trials (--json, or the run's leaderboard.json in "
                      "MLflow, lists every one)", highlight=False)
    console.print(
        f"best: [bold]{result.best_model}[/] {result.primary_metric}="
        f"{result.primary_metric_value:.4f} after {result.trials} trials "
        f"({result.failed_trials} failed, {result.pruned_trials} pruned; "
        f"stopped: {result.stop_reason}) in {result.wall_seconds:.0f} s",
        soft_wrap=True, highlight=False,
    )
    if result.test_metrics and result.primary_metric in result.test_metrics:
        test = result.test_metrics[result.primary_metric]
        console.print(f"test {result.primary_metric}={test:.4f}")
    console.print(f"registered: [bold]{result.model_uri}[/] (MLflow {result.tracking_uri})",
                  soft_wrap=True, highlight=False)
    if result.registry:
        held = f" @{', @'.join(result.aliases)}" if result.aliases else " (no alias)"
        console.print(
            f"registry: version {result.model_version}{held}: {result.registry['reason']}",
            soft_wrap=True, highlight=False)
    console.print(f"pickle: {result.pkl_uri}", soft_wrap=True, highlight=False)
    console.print(
        f"predict:  automl predict --model {result.model_uri} --data NEW.csv "
        "--output predictions.csv",
        soft_wrap=True, highlight=False,
    )
    links = run_links(result)
    width = max((len(name) for name, _ in links), default=0) + 2
    for name, target in links:
        console.print(f"{name + ':':<{width}}{target}", soft_wrap=True, highlight=False,
                      markup=False)


def _run(config: AutoMLConfig, started: float) -> TrainResult:
    from flows.api import TemporaryAPI
    from tasks.search.head_start import eligible, head_start_threads, prepare
    from tasks.search.worker_process import start_spares

    # A new run on local workers first starts the workers the first trials need, which import
    # the model libraries while this process reads, checks and splits the table and hands them
    # the portfolio's first trials (tasks.search.head_start); only then Prefect's temporary API
    # (about 6 s of CPU, in a thread: flows.api) and the flow's import, while those trials run.
    # Started at once, the API server held the first trial back by about a second on 2 cores.
    api = TemporaryAPI()
    head_start = eligible(config)
    if head_start:
        start_spares(head_start_threads(config.concurrency), config.threads_per_trial)
    else:
        api.start()
    from tasks.budget import SHUTDOWN_SECONDS

    prepared = prepare(config, started, SHUTDOWN_SECONDS) if head_start else None
    try:
        if head_start:
            api.start()
        api.url()
        from flows.automl import train

        api.wait()
        return train(config, started_at=started, shutdown_seconds=SHUTDOWN_SECONDS)
    finally:
        if prepared is not None:
            prepared.close()  # the flow closed them already, unless it failed before


def run() -> NoReturn:
    """The `automl` command: main(), its exit handlers (Prefect's last logs and events, the
    temporary API server's stop), then out at once. Tearing down the interpreter's modules
    (pandas, scikit-learn, MLflow, Prefect) took about 2 s after every run and has nothing left to
    write."""
    import atexit
    import threading

    code = main()
    # The interpreter's own order: its threads finish first (Prefect's log and event workers
    # send what they hold while the temporary API server still answers), then the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]  # noqa: SLF001
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers os._exit would skip
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
