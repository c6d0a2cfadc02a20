"""Prefect's temporary local API for a command run without a configured Prefect server.

Without PREFECT_API_URL, Prefect's client starts a temporary server itself (its "ephemeral"
mode), as a subprocess of its own, and only once Prefect is imported. Here the command starts the
same server (uvicorn serving prefect.server.api.server:create_app in ephemeral mode, no UI, on
127.0.0.1) in a thread of its own process, after the head start has handed the first trials to
the workers: a second Python process with Prefect's server imported held about 225 MB for the
whole run, where the thread adds about 70 MB to the command (figures in
benchmarks/results/2026-12-07-api-thread.md). The thread decides with Prefect's own settings
whether a server is needed; when it is, PREFECT_API_URL points at it and Prefect's settings are
refreshed, so every client, thread and exit handler of the run uses it.

The server goes with the command's process, however the command ends: nothing can outlive it.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

__all__ = ["TemporaryAPI"]

START_TIMEOUT_SECONDS = 60.0  # a new SQLite database is migrated on its first start
# At the command's exit Prefect's log and event workers have sent what they hold (at the
# threads' shutdown, while the server still answers); the server's own shutdown then needs
# threads the interpreter no longer starts, so it is given a moment, not a wait. SQLite keeps its
# file whole whatever the moment.
STOP_SECONDS = 0.2
# Set when PREFECT_API_URL is this command's own server: its pages are gone when the command ends.
TEMPORARY_MARK = "AUTOML_TEMPORARY_PREFECT_API"


class TemporaryAPI:
    """start() before the flow is imported; url() once the command needs to know (the server's
    URL, or None when Prefect's settings name an API or forbid a temporary one); wait() before
    the flow runs; stop() at exit (registered by start)."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._server: Any = None  # uvicorn.Server, once created
        self._answered = threading.Event()
        self._url: str | None = None
        self._error: BaseException | None = None
        self._stopped = False

    def start(self) -> None:
        if os.environ.get("PREFECT_API_URL"):
            self._answered.set()  # a server was named: Prefect's settings need not be read
            return
        self._thread = threading.Thread(target=self._serve, name="prefect-api", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def _serve(self) -> None:
        try:
            from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

            if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
                return  # the same rule as Prefect's client
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))  # a free port, held until uvicorn serves on it
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
            os.environ["PREFECT_API_URL"] = url
            os.environ[TEMPORARY_MARK] = "1"
            # The server's own logs were a process's stderr nobody read; in this process they
            # would land among the run's lines (telemetry that cannot reach the internet, the
            # background tasks' tracebacks). A level the user set is kept.
            os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
            logging.getLogger("docket").setLevel(logging.CRITICAL)
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()  # Prefect imported meanwhile reads the URL too
            self._url = url
            self._answered.set()

            import uvicorn
            from prefect.server.api.server import create_app

            self._server = uvicorn.Server(uvicorn.Config(
                create_app(ephemeral=True, final=True), log_level="critical", lifespan="on",
            ))
            if not self._stopped:
                self._server.run(sockets=[listener])
        except BaseException as exc:  # noqa: BLE001 - wait() tells the caller
            self._error = exc
        finally:
            self._answered.set()

    def url(self) -> str | None:
        self._answered.wait(START_TIMEOUT_SECONDS)
        return self._url

    def wait(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Block until the server answers its health check."""
        if self.url() is None:
            if self._error is not None:
                raise RuntimeError(f"Prefect's temporary API server did not start: "
                                   f"{self._error}") from self._error
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._thread is None or not self._thread.is_alive():
                raise RuntimeError(f"Prefect's temporary API server stopped while starting: "
                                   f"{self._error}") from self._error
            try:
                with urllib.request.urlopen(f"{self._url}/health", timeout=1) as answer:  # noqa: S310 - our own loopback URL
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Prefect's temporary API server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)


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
