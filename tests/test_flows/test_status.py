"""flows.status: what `automl train` shows on a terminal (its first line at once, a live status
line under the log, where to look at the run at the end) and that a pipe gets plain lines."""

from __future__ import annotations

import fcntl
import inspect
import io
import logging
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from rich.console import Console
from support import dataset_path

import tasks.search.loop
from flows.api import TEMPORARY_MARK
from flows.result import TrainResult
from flows.status import TRIAL_LINES, RunStatus, first_line, run_links
from flows.summary import mlflow_links
from tasks.config import parse_config

# Timing-sensitive: runs alone, after the parallel tests (make test).
pytestmark = pytest.mark.serial

AUTOML = [sys.executable, "-m", "flows.cli"]
TINY = ["train", "--data", str(dataset_path("blood_transfusion")), "--target",
        "donated_march_2007", "--iterations", "3", "--allowed-models",
        "LogisticRegression,DecisionTree", "--timeout-minutes", "5"]
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(args: list[str], cwd, env, timeout: float = 600) -> tuple[int, str, float]:
    """Run under a pseudo-terminal 200 columns wide: (exit code, everything it drew, seconds
    to its first visible line)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    # The terminal's size in the environment too: pytest-xdist's workers export COLUMNS=80,
    # which rich would take over the terminal's own.
    env = {**env, "COLUMNS": "200", "LINES": "50"}
    started = time.monotonic()
    process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    drawn, first = b"", None
    try:
        while time.monotonic() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            drawn += chunk
            if first is None and CONTROL.sub("", drawn.decode(errors="replace")).strip():
                first = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    assert first is not None
    return process.returncode, drawn.decode(errors="replace"), first


@pytest.fixture(scope="module")
def env(prefect_api) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_the_trial_lines_are_the_searchs_own():
    source = inspect.getsource(tasks.search.loop)
    for line in TRIAL_LINES:
        assert f'"{line}"' in source, line


def test_the_status_counts_the_searchs_trials():
    status = RunStatus(Console(file=io.StringIO(), width=200), time.time() - 75)
    status.iterations, status.budget = 5, 300.0
    log = logging.getLogger("test_status")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(status)
    try:
        log.info("trial %s %s=%.4f (best %.4f, %s) fit %.1fs", "A-0", "r2_score", 0.5, 0.5,
                 "A-0", 1.0)
        log.warning("trial %s failed: %s", "B-1", "ValueError: no")
        log.info("trial %s %s", "C-2", "pruned after fold 1 of 5: r2_score 0.1 there")
        log.info("trial %s %s=%.4f (best %.4f, %s) fit %.1fs", "D-3", "r2_score", 0.8, 0.8,
                 "D-3", 1.0)
        log.info("trial %s %s", "E-4", "something else")  # not a finished trial
    finally:
        log.removeHandler(status)
    text = status.__rich__().plain
    assert re.fullmatch(r"elapsed 1:1[56], 3:4[45] left \| trials 4/5 \(1 failed, 1 pruned\) \| "
                        r"best r2_score 0\.8000 \(D-3\)", text), text
    assert "trial B-1 failed: ValueError: no" in status.console.file.getvalue()


def test_the_status_counts_screening_jobs_and_trials_not_started():
    status = RunStatus(Console(file=io.StringIO(), width=200), time.time())
    status.iterations = 9
    log = logging.getLogger("test_status_screening")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(status)
    try:
        log.info("trial %s %s=%.4f screened on %s rows, fit %.1fs", "A-1", "AUC_weighted", 0.8,
                 "45,000", 3.0)
        log.info("trial %s %s", "B-2", "not started: it needs about 900 MB more")
        log.info("trial %s %s", "C-3", "promoted from screening job A-1")  # not a finished trial
    finally:
        log.removeHandler(status)
    assert "| trials 2/9 (0 failed, 0 pruned, 1 screened) |" in status.__rich__().plain


def test_the_first_line_says_data_target_task_metric_and_budget():
    line = first_line(parse_config(training_data="s3://u:p@b/t.csv", target="y", iterations=3))
    assert line == ("training on 's3://b/t.csv': target 'y', task inferred from the target, "
                    "metric AUC_weighted (classification) or normalized_root_mean_squared_error "
                    "(regression), at most 3 trials in 6 h")
    line = first_line(parse_config(training_data="t.csv", target="y", task="regression",
                                   experiment_timeout_minutes=1.5))
    assert line.endswith("task regression, metric normalized_root_mean_squared_error, at most "
                         "1000 trials in 1 min 30 s"), line


def _result(**changes: object) -> TrainResult:
    values: dict[str, object] = dict(
        run_id="abc", experiment_name="e", task="classification", validation="cv",
        registered_model_name="m", model_version="2", model_uri="models:/m/2", pkl_uri="x.pkl",
        best_model="LightGBM-0", best_family="lightgbm", best_params={},
        primary_metric="AUC_weighted", primary_metric_value=0.9, metrics={}, test_metrics=None,
        trials=3, failed_trials=0, stop_reason="iteration limit", wall_seconds=9.0,
        tracking_uri="sqlite:////w/mlflow.db", experiment_id="7", flow_run_id="f-1")
    values.update(changes)
    return TrainResult(**values)  # type: ignore[arg-type]


def test_the_links_at_the_end(monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    monkeypatch.delenv("AUTOML_MLFLOW_UI_URL", raising=False)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api",
                             PREFECT_UI_URL: "http://127.0.0.1:4200"}):
        embedded = run_links(_result())
        served = run_links(_result(tracking_uri="http://127.0.0.1:5000"))
        monkeypatch.setenv(TEMPORARY_MARK, "1")  # the command's own API: its pages are gone
        temporary = run_links(_result())
    prefect = ("prefect flow run", "http://127.0.0.1:4200/runs/flow-run/f-1")
    assert embedded == [
        ("see the runs", "mlflow ui --backend-store-uri sqlite:////w/mlflow.db"), prefect]
    shown = dict(served)
    assert shown["mlflow run"].startswith("http://127.0.0.1:5000/#/experiments/7/runs/abc")
    assert shown["mlflow experiment"] == (
        "http://127.0.0.1:5000/#/experiments/7?workflowType=machine_learning")
    assert served == [*((f"mlflow {name}", link) for name, link in
                        mlflow_links(_result(tracking_uri="http://127.0.0.1:5000")).items()),
                      prefect]
    assert temporary == embedded[:1]


@pytest.mark.slow
def test_on_a_terminal_the_first_line_comes_before_the_heavy_imports(tmp_path):
    """The first record of the `automl` log, as the command makes it on a terminal: what it is
    about to do, with none of the heavy libraries loaded yet."""
    script = ("import logging, os, sys\n"
              "class First(logging.Handler):\n"
              "    def emit(self, record):\n"
              "        heavy = [m for m in ('pandas', 'sklearn', 'mlflow', 'prefect')\n"
              "                 if m in sys.modules]\n"
              "        os.write(1, f'{heavy} {record.getMessage()}\\n'.encode())\n"
              "        os._exit(0)\n"
              "logging.getLogger('automl').addHandler(First())\n"
              "from flows.cli import main\n"
              "main(sys.argv[1:])\n")
    code, drawn, seconds = on_a_terminal([sys.executable, "-c", script, *TINY], tmp_path,
                                         dict(os.environ))
    assert code == 0, drawn
    assert drawn.strip().startswith("[] training on '"), drawn
    assert seconds < 5, f"{seconds:.1f} s"  # 0.3-0.5 s measured on an idle machine


def test_on_a_terminal_a_refusal_follows_the_first_line(tmp_path):
    args = [*TINY[:4], "typo", *TINY[5:]]
    code, drawn, _ = on_a_terminal([*AUTOML, *args], tmp_path, dict(os.environ))
    lines = [line for line in CONTROL.sub("", drawn).replace("\r", "\n").splitlines()
             if line.strip()]
    assert code == 2
    assert " training on '" in lines[0] and "target 'typo'" in lines[0]
    # Then the status line, drawn and taken away, and the refusal's one sentence.
    assert lines[-1].startswith(f"error: target column 'typo' is not in '{TINY[2]}'; columns "
                                "are: "), lines
    assert all(line.startswith("elapsed ") for line in lines[1:-1]), lines
    assert not (tmp_path / "automl-runs").exists()


@pytest.mark.slow
def test_a_run_on_a_terminal_shows_its_status_and_where_to_look(env, tmp_path):
    code, drawn, seconds = on_a_terminal([*AUTOML, *TINY], tmp_path, env)
    assert code == 0, drawn[-3000:]
    plain = CONTROL.sub("", drawn)
    lines = [line for line in plain.replace("\r", "\n").splitlines() if line.strip()]
    assert re.match(r"\d\d:\d\d:\d\d training on '.*blood_transfusion.*': target "
                    r"'donated_march_2007', task inferred from the target, .* at most 3 trials "
                    r"in 5 min$", lines[0]), lines[0]
    assert seconds < 5, f"first line after {seconds:.1f} s"
    # The status line, redrawn as the trials come in, under the log's lines.
    assert re.search(r"elapsed 0:\d\d, 4:\d\d left \| trials 0/3 \(0 failed, 0 pruned\) \| "
                     r"best -", plain)
    assert re.search(r"elapsed \d:\d\d, \d:\d\d left \| trials 3/3 \(0 failed, 0 pruned\) \| "
                     r"best AUC_weighted 0\.\d{4} \((LogisticRegression|DecisionTree)-\d\)", plain)
    assert re.search(r"\d\d:\d\d:\d\d trial \w+-\d AUC_weighted=", plain)
    assert "\x1b[2K" in drawn  # rich redrew the line in place
    store = f"sqlite:///{tmp_path / 'automl-runs' / 'mlflow.db'}"
    assert re.fullmatch(f"see the runs: +mlflow ui --backend-store-uri {re.escape(store)}",
                        lines[-2]), lines[-2:]
    assert re.fullmatch(r"prefect flow run: +http://.*/runs/flow-run/[0-9a-f-]{36}", lines[-1])


@pytest.mark.slow
def test_a_piped_run_has_plain_lines(env, tmp_path):
    done = subprocess.run([*AUTOML, *TINY], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\x1b" not in done.stderr and "\x1b" not in done.stdout
    lines = done.stderr.splitlines()
    # Today's lines: the flow's own from the first (a refusal stays one line), no status line.
    assert re.match(r"\d\d:\d\d:\d\d task: classification, inferred", lines[0]), lines[0]
    assert "training on" not in done.stderr and "elapsed" not in done.stderr
    assert sum(" trial " in line for line in lines) == 3
    assert re.search(r"^see the runs: +mlflow ui --backend-store-uri sqlite:///\S+$",
                     done.stdout, re.MULTILINE)
    assert re.search(r"^prefect flow run: +http://", done.stdout, re.MULTILINE)
