"""Trial worker processes: each loads the search data once, runs one trial at a time, and can be
stopped.

A thread cannot be stopped and a process pool cannot lose a worker without breaking, so every
trial runs in a worker process of its own that a supervisor watches: past the time limit or the
memory cap the supervisor kills it and starts a fresh one for the next trial; so too after a
trial of a family whose import stays behind (Family.retire_worker: torch). The supervisor is
whatever runs the trial task (a thread of the flow, or a Dask worker), so the same limits hold on
every task runner.

The worker is a plain `python` subprocess speaking pickled messages over its stdin and stdout
(framed by multiprocessing's Connection): no fork of a threaded parent, and it works inside
daemonic Dask workers, which may not have multiprocessing children. Its side of the pipe is
tasks.search.trial_process.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import psutil

from tasks.models.families import FAMILIES
from tasks.search.candidates import TrialResult

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tasks.data.sets import SearchData
    from tasks.search.candidates import Candidate, TrialSettings

__all__ = [
    "TrialLimits", "Payload", "WorkerPool", "pool_for", "cut_off_pools", "close_pools",
    "trial_limits", "start_spares", "stop_spares",
]

log = logging.getLogger("automl")

POLL_SECONDS = 0.1
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


def trial_limits(stop_by: float, timeout_minutes: float | None,
                 memory_mb: float | None) -> TrialLimits:
    """A trial's limits as it starts: iteration_timeout_minutes, or the time until `stop_by`
    (time.monotonic()) when that is sooner."""
    left = stop_by - time.monotonic()
    if timeout_minutes is not None and timeout_minutes * 60 <= left:
        return TrialLimits(timeout_minutes * 60, memory_mb, "timeout")
    return TrialLimits(max(left, 1.0), memory_mb, "budget")


@dataclass(frozen=True)
class Payload:
    """What every trial of a run shares, written once to a file each worker loads once."""

    path: str
    threads: int  # per trial: OMP_NUM_THREADS and friends in the worker's environment

    @staticmethod
    def write(data: SearchData, settings: TrialSettings, folder: Path, name: str) -> Payload:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.pkl"
        with open(path, "wb") as out:
            pickle.dump((data, settings), out, protocol=pickle.HIGHEST_PROTOCOL)
        return Payload(str(path), max(1, settings.n_jobs))


class _Worker:
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
        self._stopping = threading.Lock()

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
        peak = 0.0
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
            if limits.memory_mb is not None:
                peak = max(peak, self._rss_mb())
                if peak > limits.memory_mb:
                    self.stop()
                    return _stopped(
                        candidate, elapsed, "memory",
                        f"memory: used {peak:.0f} MB, more than max_memory_mb={limits.memory_mb:g}",
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


class WorkerPool:
    """Worker processes for one payload: an idle one takes the next trial, a new one is started
    when none is idle, a killed one is replaced by the next trial that needs a worker."""

    def __init__(self, payload: Payload) -> None:
        self.payload = payload
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self.cut_off_at: float | None = None  # epoch seconds: running trials stop then

    def warm(self, n: int) -> None:
        """Start n workers now, so their start-up overlaps the caller's own work."""
        for _ in range(n):
            self._idle.put(self._start())

    def _start(self) -> _Worker:
        worker = _take_spare(self.payload) or _Worker(self.payload.threads, self.payload.path)
        with self._lock:
            self._all = [w for w in self._all if w.alive] + [worker]
        return worker

    def run(self, candidate: Candidate, limits: TrialLimits) -> TrialResult:
        worker = self._idle_worker()
        result = worker.run(candidate, limits, lambda: self.cut_off_at)
        result = replace(result, started_at=worker.sent_at or time.time(), ended_at=time.time())
        family = FAMILIES.get(candidate.family)
        if worker.alive and family is not None and family.retire_worker:
            # What its trial imported (torch) would stay in the worker for every later trial.
            worker.stop()
            self._idle.put(self._start())  # loading the data while the result is recorded
        elif worker.alive:
            self._idle.put(worker)
        return replace(result, worker=f"{socket.gethostname()}:{os.getpid()}")

    def _idle_worker(self) -> _Worker:
        """An idle worker still alive (one may have been killed from outside), else a new one."""
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return self._start()
            if worker.alive:
                return worker
            worker.stop()

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.stop()


_SPARES: list[_Worker] = []
_SPARES_LOCK = threading.Lock()


def start_spares(n: int, threads: int) -> None:
    """Start n workers now, before the run's data exists: they import the model libraries (about
    1.5 s of CPU each) while the caller reads and splits the table, and the first pools that
    need workers of `threads` threads take them. Those left over are stopped at exit."""
    if not _SPARES:
        atexit.register(stop_spares)
    with _SPARES_LOCK:
        _SPARES.extend(_Worker(threads, None) for _ in range(n))


def stop_spares() -> None:
    with _SPARES_LOCK:
        spares = _SPARES[:]
        _SPARES.clear()
    for worker in spares:
        worker.stop()


def _take_spare(payload: Payload) -> _Worker | None:
    with _SPARES_LOCK:
        while _SPARES:
            worker = next((w for w in _SPARES if w.threads == payload.threads), None)
            if worker is None:
                return None
            _SPARES.remove(worker)
            if worker.alive and worker.load(payload.path):
                return worker
            worker.stop()
    return None


_POOLS: dict[Payload, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(payload: Payload) -> WorkerPool:
    """This process's pool for a payload: the flow's own process, or each Dask worker's."""
    with _POOLS_LOCK:
        if payload not in _POOLS:
            _POOLS[payload] = WorkerPool(payload)
        return _POOLS[payload]


def cut_off_pools(payload: Payload, at: float) -> None:
    """Stop this process's trials of a payload at epoch time `at`, sooner than the limits they
    started with: the search's deadline moves earlier once a model exists that must be refit."""
    with _POOLS_LOCK:
        pool = _POOLS.get(payload)
    if pool is not None:
        pool.cut_off_at = at


def close_pools(payload: Payload | None = None) -> None:
    with _POOLS_LOCK:
        keys = [p for p in _POOLS if payload is None or p == payload]
        pools = [_POOLS.pop(p) for p in keys]
    for pool in pools:
        pool.close()
