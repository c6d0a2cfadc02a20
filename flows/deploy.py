"""The whole local stack for a user (`make deploy` / `make stop`): a Prefect server on 127.0.0.1,
the process work pool, the deployments of prefect.yaml, a worker, and the MLflow UI.

Each process runs in its own session with its log under the stack's home; their ids are kept in
a file there, so `stop` can end them later, worker first (it hands its runs back to the server on
the way out), then the servers. The test of the deployments starts the same stack on free ports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from flows.summary import MLFLOW_UI_VARIABLE

__all__ = ["Stack", "free_port", "main"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POOL = "automl"
STATE = "stack.json"


def free_port(preferred: int = 0) -> int:
    """The preferred port when nothing listens on it, else one the system picks."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


@dataclass
class Stack:
    home: Path  # PREFECT_HOME, logs and the process ids
    runs: Path  # where deployed runs keep MLflow and Optuna: runs/automl-runs
    prefect_port: int
    mlflow_port: int | None = None  # None: no MLflow UI
    worker_query_seconds: int | None = None
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.runs / 'automl-runs' / 'mlflow.db'}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def env(self) -> dict[str, str]:
        env = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_API_URL": self.api_url,
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_CLI_WRAP_LINES": "false",
               # prefect.yaml's {{ $PWD }}: where the deployed runs' MLflow store is.
               "PWD": str(self.runs), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        if self.mlflow_port:  # the runs' summaries link to the pages of this MLflow UI
            env[MLFLOW_UI_VARIABLE] = self.mlflow_url
        if self.worker_query_seconds:
            env["PREFECT_WORKER_QUERY_SECONDS"] = str(self.worker_query_seconds)
        return env

    def up(self, timeout: float = 120) -> None:
        """Start everything and return once the worker polls; on failure stop what started."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        (self.runs / "automl-runs").mkdir(parents=True, exist_ok=True)
        try:
            self._start("server", "prefect", "server", "start", "--host", "127.0.0.1",
                        "--port", str(self.prefect_port), "--analytics-off")
            if self.mlflow_port:
                self._start("mlflow", "mlflow", "server", "--host", "127.0.0.1", "--port",
                            str(self.mlflow_port), "--backend-store-uri", self.tracking_uri,
                            "--workers", "1")
            self._wait(f"{self.api_url}/health", "server", timeout)
            self._prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
            self._prefect("--no-prompt", "deploy", "--all")
            self._start("worker", "prefect", "worker", "start", "--pool", POOL,
                        "--install-policy", "never")
            if self.mlflow_port:
                self._wait(f"http://127.0.0.1:{self.mlflow_port}/health", "mlflow", timeout)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """The worker first (a second SIGTERM makes it stop at once), then the servers; then
        any flow run the worker started (each in its own session) that outlived it."""
        children = _descendants(list(self.pids.values()))
        for name in ("worker", "mlflow", "server"):
            pid = self.pids.pop(name, None)
            if pid is not None:
                _stop(pid, twice=name == "worker")
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        self._save()

    def log_tail(self, name: str, lines: int = 60) -> str:
        path = self.home / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _start(self, name: str, program: str, *args: str) -> None:
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen([str(BIN / program), *args], cwd=ROOT, env=self.env(),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.pids[name] = process.pid
        self._save()

    def _prefect(self, *args: str) -> None:
        done = subprocess.run([str(BIN / "prefect"), *args], cwd=ROOT, env=self.env(),
                              capture_output=True, text=True, timeout=300)
        (self.home / "logs" / "setup.log").open("a").write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def _wait(self, url: str, name: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not _alive(self.pids[name]):
                raise RuntimeError(f"{name} exited at start:\n{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - ours
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"{name} was not healthy at {url} after {timeout:.0f} s")

    def _save(self) -> None:
        state = {"pids": self.pids, "prefect_port": self.prefect_port,
                 "mlflow_port": self.mlflow_port, "runs": str(self.runs)}
        (self.home / STATE).write_text(json.dumps(state))

    @classmethod
    def load(cls, home: Path) -> Stack | None:
        path = home / STATE
        if not path.exists():
            return None
        state = json.loads(path.read_text())
        return cls(home, Path(state["runs"]), state["prefect_port"], state["mlflow_port"],
                   pids=state["pids"])


def _descendants(pids: list[int]) -> list[psutil.Process]:
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.extend(psutil.Process(pid).children(recursive=True))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: gone, for us.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _stop(pid: int, twice: bool, grace: float = 10.0) -> None:
    """SIGTERM to the process's session group (twice for the worker), SIGKILL after grace."""
    for attempt in range(2 if twice else 1):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        end = time.monotonic() + (grace / 2 if twice and attempt == 0 else grace)
        while time.monotonic() < end and _alive(pid):
            time.sleep(0.2)
        if not _alive(pid):
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # what is left of the group: the server's own children


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--home", type=Path, default=ROOT / ".prefect-stack")
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    home = args.home.resolve()
    running = Stack.load(home)
    if args.command == "down":
        if running is None or not running.pids:
            print("no local stack is running")
            return 0
        running.down()
        (home / STATE).unlink(missing_ok=True)
        print("stopped the worker, the Prefect server and the MLflow UI")
        return 0
    if running is not None and any(_alive(pid) for pid in running.pids.values()):
        print(f"the local stack is already running ({home / STATE}); `make stop` first",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    stack = Stack(home, ROOT, free_port(args.prefect_port), free_port(args.mlflow_port))
    try:
        stack.up()
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ui = f"http://127.0.0.1:{stack.prefect_port}"
    print(f"""local stack up in {time.monotonic() - started:.0f} s (logs: {home / 'logs'})
  Prefect UI   {ui}   (deployments automl-train/train, automl-retrain/nightly, automl-score/batch)
  MLflow UI    {stack.mlflow_url}/#/experiments?workflowType=machine_learning
               (the store {stack.tracking_uri}; each run's summary in Prefect links to its page)
  worker       pool '{POOL}', pid {stack.pids['worker']}
From a shell:  export PREFECT_API_URL={stack.api_url}
               .venv/bin/prefect deployment run automl-train/train --watch \\
                 -p config='{{"training_data": "/path/train.parquet", "target": "y"}}'
Stop it all:   make stop""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
