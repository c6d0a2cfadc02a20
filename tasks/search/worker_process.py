"""One trial worker process and its supervision: started (at once with its payload, or early as
a spare that is given one later), handed one trial at a time, and stopped at its time limit, its
memory cap or the search's cut-off. tasks.search.workers pools them; the process's own side of
the pipe is tasks.search.trial_process.

The worker is a plain `python` subprocess speaking pickled messages over its stdin and stdout
(framed by multiprocessing's Connection): no fork of a threaded parent, and it works inside
daemonic Dask workers, which may not have multiprocessing children.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import psutil

from tasks.search.candidates import TrialResult
from tasks.search.memory import run_rss_mb

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.search.candidates import Candidate

__all__ = ["TrialLimits", "WorkerProcess", "start_spares", "stop_spares", "take_spare"]

POLL_SECONDS = 0.1
# The run's memory (max_memory_mb) is read this often: walking the process tree costs more than
# reading one process.
RUN_CHECK = 0.5
SERVE = "from tasks.search.trial_process import serve; serve()"  # the worker's command
START_TIMEOUT_SECONDS = 300.0  # importing the model libraries and unpickling a large table


@dataclass(frozen=True)
class TrialLimits:
    """How long and how much memory one trial may take; None is no limit."""

    seconds: float | None = None
    memory_mb: float | None = None
    # Why `seconds` is what it is: "timeout" (iteration_timeout_minutes) or "budget" (the search's
    # share of experiment_timeout_minutes ends first).
    seconds_reason: str = "timeout"
    # max_memory_mb: the whole run's (this process and its children), checked as the trial runs.
    run_memory_mb: float | None = None


class WorkerProcess:
    """One supervised worker process: given its payload at once, or later (a spare)."""

    def __init__(self, threads: int, payload: str | None) -> None:
        self.threads = threads
        threads_text = str(threads)
        env = {
            **os.environ,
            # OpenMP/BLAS read these at import: set before the worker imports anything. Passive
            # waiting stops idle OpenMP threads spinning against the other trials' cores.
            "OMP_NUM_THREADS": threads_text, "OPENBLAS_NUM_THREADS": threads_text,
            "MKL_NUM_THREADS": threads_text, "OMP_WAIT_POLICY": "PASSIVE",
            # glibc gives each thread that allocates its own arena, kept at its peak: the boosters'
            # threads would multiply the heap a trial leaves behind.
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
        }
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - stop() closes it
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE, *([payload] if payload else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._send = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self._ps = psutil.Process(self.process.pid)
        self.ready = False
        self.sent_at = 0.0  # epoch seconds the last trial was handed over, once the worker was up
        self._stopping = threading.RLock()  # _died reads stderr, then stops, holding it

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def load(self, payload: str) -> bool:
        """A spare's payload, sent once; False if the worker is gone."""
        try:
            self._send.send(payload)
        except OSError:
            return False
        return True

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._recv.poll(POLL_SECONDS):
                try:
                    self._recv.recv()
                except EOFError:
                    return self._died("the trial worker failed to start")
                self.ready = True
                return None
            if not self.alive:
                return self._died("the trial worker failed to start")
        self.stop()
        return "the trial worker did not start within 300 s"

    def run(self, candidate: Candidate, limits: TrialLimits,
            cut_off: Callable[[], float | None] = lambda: None) -> TrialResult:
        if not self.ready and (problem := self._wait_ready()) is not None:
            return TrialResult(candidate, False, error=problem, reason="error")
        started = time.monotonic()
        self.sent_at = time.time()
        try:
            self._send.send(candidate)
        except OSError:  # it died (was killed) while idle
            return TrialResult(candidate, False, error=self._died("the trial worker died"),
                               reason="error")
        peak, run_checked = 0.0, started
        # A trial stopped for the run's memory reports its rise, so the run's memory gate
        # (tasks.search.memory) keeps its family's next trials from starting.
        start_mb = self._rss_mb() if limits.run_memory_mb is not None else 0.0
        while True:
            try:
                if self._recv.poll(POLL_SECONDS):
                    result: TrialResult = self._recv.recv()  # what serve() sends
                    return result
            except (EOFError, OSError):  # it died, or its pool was closed (stopped) meanwhile
                break
            elapsed = time.monotonic() - started
            if not self.alive:
                break
            if limits.seconds is not None and elapsed > limits.seconds:
                self.stop()
                return _stopped(candidate, elapsed, limits.seconds_reason,
                                _timeout_text(limits.seconds, limits.seconds_reason))
            if (at := cut_off()) is not None and time.time() > at:
                self.stop()
                return _stopped(candidate, elapsed, "budget", _budget_text(elapsed))
            if limits.run_memory_mb is not None and time.monotonic() - run_checked > RUN_CHECK:
                run_checked = time.monotonic()
                if (held := run_rss_mb()) > limits.run_memory_mb:
                    worker_mb = self._rss_mb()
                    self.stop()
                    return replace(_stopped(candidate, elapsed, "memory",
                                            f"memory: the run used {held:.0f} MB, more than "
                                            f"max_memory_mb={limits.run_memory_mb:g}"),
                                   start_memory_mb=start_mb, peak_memory_mb=worker_mb)
            if limits.memory_mb is not None:
                peak = max(peak, self._rss_mb())
                if peak > limits.memory_mb:
                    self.stop()
                    return _stopped(
                        candidate, elapsed, "memory",
                        f"memory: used {peak:.0f} MB, more than "
                        f"max_memory_mb_per_iteration={limits.memory_mb:g}",
                    )
        error = self._died("the trial worker died")
        return TrialResult(candidate, False, fit_seconds=time.monotonic() - started, error=error,
                           reason="error")

    def _rss_mb(self) -> float:
        try:
            procs = [self._ps, *self._ps.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs) / 2**20
        except psutil.Error:
            return 0.0

    def _died(self, what: str) -> str:
        if self.alive:
            self.process.kill()
        code = self.process.wait()
        lines: list[str] = []
        with self._stopping:  # the pool's close may be stopping it (and closing stderr) now
            if not self._stderr.closed:
                self._stderr.seek(0)
                lines = self._stderr.read().decode(errors="replace").strip().splitlines()
            self.stop()
        detail = f": {lines[-1][:500]}" if lines else ""
        return f"{what} (exit code {code}){detail}"

    def stop(self) -> None:
        # Once, whoever comes first: the pool's close while the trial's own thread finds its
        # worker gone (a head-start trial nobody claimed) would close the pipes twice.
        with self._stopping:
            if self.alive:
                self.process.kill()
            self.process.wait()
            if self._send.closed:
                return
            for conn in (self._send, self._recv):
                conn.close()
            self._stderr.close()


def _budget_text(seconds: float) -> str:
    return f"budget: stopped after {seconds:.0f} s, when the search's time budget ran out"


def _timeout_text(seconds: float, reason: str) -> str:
    """Why a trial stopped at its time limit of `seconds`, set for `reason` (TrialLimits)."""
    if reason == "budget":
        return _budget_text(seconds)
    return (f"timeout: stopped after {seconds:.0f} s, "
            f"iteration_timeout_minutes={seconds / 60:g}")


def _stopped(candidate: Candidate, elapsed: float, reason: str, error: str) -> TrialResult:
    return TrialResult(candidate, False, fit_seconds=elapsed, error=error, reason=reason)


_SPARES: list[WorkerProcess] = []
_SPARES_LOCK = threading.Lock()


def start_spares(n: int, threads: int) -> None:
    """Start n workers now, before the run's data exists: they import the model libraries (about
    1.5 s of CPU each) while the caller reads and splits the table, and the first pools that
    need workers of `threads` threads take them. Those left over are stopped at exit."""
    if not _SPARES:
        atexit.register(stop_spares)
    with _SPARES_LOCK:
        _SPARES.extend(WorkerProcess(threads, None) for _ in range(n))


def stop_spares() -> None:
    with _SPARES_LOCK:
        spares = _SPARES[:]
        _SPARES.clear()
    for worker in spares:
        worker.stop()


def take_spare(threads: int, payload: str) -> WorkerProcess | None:
    """A spare of `threads` threads, given the payload at `payload`; None when there is none."""
    with _SPARES_LOCK:
        while _SPARES:
            worker = next((w for w in _SPARES if w.threads == threads), None)
            if worker is None:
                return None
            _SPARES.remove(worker)
            if worker.alive and worker.load(payload):
                return worker
            worker.stop()
    return None
