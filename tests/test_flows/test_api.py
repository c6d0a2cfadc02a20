"""The command's own temporary Prefect API (flows.api): served from a thread of the command, used
by the whole run (no Prefect server process of its own, nor one Prefect's client would start),
gone when the command ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import psutil
from support import dataset_path

AUTOML = [sys.executable, "-m", "flows.cli"]


def embedded_env(tmp_path) -> dict[str, str]:
    """No Prefect server configured: the command must start its own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    return env


def server_processes(command: psutil.Process) -> list[list[str]]:
    """The command lines of any Prefect API server among the command's descendants: one of its
    own (flows.api as a process) or the one Prefect's client starts when it finds no API
    (uvicorn serving prefect.server)."""
    found = []
    try:
        children = command.children(recursive=True)
    except psutil.Error:  # the command ended meanwhile
        return found
    for child in children:
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "flows.api" in cmd or "uvicorn" in cmd or any("prefect.server" in c for c in cmd):
            found.append(cmd)
    return found


def watch(command: subprocess.Popen[str]) -> tuple[str, str, list[list[str]]]:
    """The command's output, and the server processes seen among its children while it ran."""
    parent, seen = psutil.Process(command.pid), []
    while command.poll() is None:
        seen += server_processes(parent)
        time.sleep(0.1)
    out, err = command.communicate(timeout=600)
    return out, err, seen


def train(tmp_path, *extra: str) -> list[str]:
    return [*AUTOML, "train", "--data", str(dataset_path("blood_transfusion")),
            "--target", "donated_march_2007", "--workdir", str(tmp_path / "runs"), *extra]


def test_a_run_without_a_server_serves_its_own_from_the_command(tmp_path):
    # Prefect's defaults as a newcomer has them: the server's telemetry on (it fails offline).
    env = {k: v for k, v in embedded_env(tmp_path).items()
           if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    command = subprocess.Popen(train(tmp_path, "--iterations", "2", "--json"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    out, err, seen = watch(command)
    assert command.returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["model_version"] == "1"
    # Prefect recorded the flow run in the temporary server's database, under PREFECT_HOME.
    assert (tmp_path / "prefect-home" / "prefect.db").exists()
    assert result["flow_run_id"]
    assert not seen, f"a Prefect API server ran as a process of its own: {seen}"
    # The server's own logs stay out of the run's lines.
    assert "prefect.server" not in err and "Traceback" not in err and "| ERROR" not in err, err


def test_a_configured_server_is_used_and_none_is_started(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL

    env = {**embedded_env(tmp_path), "PREFECT_API_URL": PREFECT_API_URL.value()}
    command = subprocess.Popen(train(tmp_path, "--iterations", "2", "--json"), env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    _, err, seen = watch(command)
    assert command.returncode == 0, err[-2000:]
    assert not seen
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()  # the named server's instead


def test_make_install_creates_the_database_quietly(tmp_path):
    # `make install` runs this once; Prefect's defaults as a newcomer has them (the server's
    # telemetry on: offline, it fails and logs an error unless the server's logs are held back).
    env = {k: v for k, v in os.environ.items()
           if k not in ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    done = subprocess.run([sys.executable, "-c", "from flows.api import prepare; prepare()"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "prefect-home" / "prefect.db").exists()
    assert done.stderr == "", done.stderr[-2000:]
