"""The command's own temporary Prefect API (flows.api): started before Prefect is imported, used
by the whole run, gone when the command ends, however it ends."""

from __future__ import annotations

import json
import os
import signal
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


def api_servers(parent: int | None = None) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "flows.api" in cmd and (parent is None or str(parent) in cmd):
            found.append(p)
    return found


def train(tmp_path, *extra: str) -> list[str]:
    return [*AUTOML, "train", "--data", str(dataset_path("blood_transfusion")),
            "--target", "donated_march_2007", "--workdir", str(tmp_path / "runs"), *extra]


def test_a_run_without_a_server_uses_its_own_and_stops_it(tmp_path):
    command = subprocess.Popen(train(tmp_path, "--iterations", "2", "--json"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=embedded_env(tmp_path), cwd=tmp_path)
    out, err = command.communicate(timeout=600)
    assert command.returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["model_version"] == "1"
    # Prefect recorded the flow run in the temporary server's database, under PREFECT_HOME.
    assert (tmp_path / "prefect-home" / "prefect.db").exists()
    # This command's server (its pid is the server's argument): other tests' runs have their own.
    assert not api_servers(command.pid), "the temporary API server outlived the command"


def test_the_server_stops_itself_when_the_command_is_killed(tmp_path):
    command = subprocess.Popen(train(tmp_path, "--iterations", "50"), env=embedded_env(tmp_path),
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not api_servers(command.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    servers = api_servers(command.pid)
    assert servers, "no temporary API server was started"
    time.sleep(3)  # serving by now
    command.send_signal(signal.SIGKILL)  # no exit handler runs
    command.wait()
    gone, alive = psutil.wait_procs(servers, timeout=15)
    # An orphan that has exited stays a zombie until init reaps it, which a minimal init (a
    # container's, a microVM's) may never do: exited is what the test asks.
    assert not [p for p in alive if not exited(p)], "the temporary API server outlived a killed command"


def exited(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_configured_server_is_used_and_none_is_started(tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL

    env = {**embedded_env(tmp_path), "PREFECT_API_URL": PREFECT_API_URL.value()}
    command = subprocess.Popen(train(tmp_path, "--iterations", "2", "--json"), env=env,
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    started = []
    while command.poll() is None:
        started += api_servers(command.pid)
        time.sleep(0.1)
    out, err = command.communicate()
    assert command.returncode == 0, err[-2000:]
    assert not started
    assert not (tmp_path / "prefect-home" / "prefect.db").exists()  # the named server's instead
