"""Prefect's temporary local API for a command run without a configured Prefect server.

Without PREFECT_API_URL, Prefect's client starts a temporary server itself (its "ephemeral"
mode): this process then imports the whole server (FastAPI, SQLAlchemy, its models: about 70 MB
and 2 s on 2 cores) only to start a subprocess, and starts it only once Prefect is imported.
Here the server process starts first thing, decides itself with Prefect's own settings whether
it is needed, and says so on its stdout; meanwhile this process imports what does not need
Prefect. When it is needed, PREFECT_API_URL points at it before this process imports Prefect,
so every client, thread and exit handler of the run uses it. It is the same server Prefect
starts (uvicorn serving prefect.server.api.server:create_app in ephemeral mode, no UI, on
127.0.0.1), stopped when the command exits, after Prefect's exit handlers have sent their last
logs and events, and it stops itself if the command dies first.

`python -m flows.api PARENT_PID` runs the server side.
"""

from __future__ import annotations

import atexit
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

__all__ = ["TemporaryAPI"]

START_TIMEOUT_SECONDS = 60.0  # a new SQLite database is migrated on its first start
STOP_TIMEOUT_SECONDS = 5.0
ORPHAN_GRACE_SECONDS = 3.0
NOT_NEEDED = "configured"  # what the server side prints when an API is already configured
# Set when PREFECT_API_URL is this command's own server: its pages are gone when the command ends.
TEMPORARY_MARK = "AUTOML_TEMPORARY_PREFECT_API"


class TemporaryAPI:
    """The command's side. start() before anything imports Prefect; url() once the command
    needs to know (it sets PREFECT_API_URL); wait() before the flow runs."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self._url: str | None = None
        self._answered = False

    def start(self) -> None:
        if os.environ.get("PREFECT_API_URL"):
            self._answered = True  # a server was named: Prefect's settings need not be read
            return
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.api", str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env={**os.environ, "PREFECT_UI_ENABLED": "0"},
        )
        # Registered before Prefect is imported: exit handlers run last-registered first, so
        # Prefect's own (which send the last logs and events) run while the server still answers.
        atexit.register(self.stop)

    def url(self) -> str | None:
        """The server's API URL, exported as PREFECT_API_URL; None when Prefect's settings
        already name an API (or forbid a temporary one)."""
        if not self._answered:
            self._answered = True
            assert self.process is not None and self.process.stdout is not None
            ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
            line = self.process.stdout.readline().strip() if ready else ""
            if line.startswith("http"):
                self._url = line
                os.environ["PREFECT_API_URL"] = line
                os.environ[TEMPORARY_MARK] = "1"
            else:
                self.stop()
        return self._url

    def wait(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Block until the server answers its health check."""
        if self.url() is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("Prefect's temporary API server exited while starting")
            try:
                with urllib.request.urlopen(f"{self._url}/health", timeout=1) as answer:  # noqa: S310 - our own loopback URL
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Prefect's temporary API server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare() -> None:
    """Create the temporary API server's database now (`make install` does): a new one is
    migrated on its first start, about 11 s on 2 cores that a first run would take from its
    budget."""
    api = TemporaryAPI()
    api.start()
    try:
        api.wait()
    finally:
        api.stop()


def _serve(parent: int) -> None:
    """The server side: say whether a server is needed, then serve until stopped or orphaned."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        print(NOT_NEEDED, flush=True)  # the same rule as Prefect's client
        return
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # a free port, held until uvicorn serves on it
    print(f"http://127.0.0.1:{listener.getsockname()[1]}/api", flush=True)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the parent reads one line only

    import uvicorn
    from prefect.server.api.server import create_app

    server = uvicorn.Server(uvicorn.Config(
        create_app(ephemeral=True, final=True), log_level="error", lifespan="on",
    ))

    def orphaned() -> None:  # the command died without stopping us
        while os.getppid() == parent:
            time.sleep(1.0)
        server.should_exit = True
        # A server still starting (a new database's migrations, Prefect's services) finishes
        # its start-up before it looks at should_exit: up to 16 s seen on 2 cores. Nobody is
        # left to talk to, so past a short grace it goes at once (SQLite keeps its file whole).
        time.sleep(ORPHAN_GRACE_SECONDS)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    server.run(sockets=[listener])


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
