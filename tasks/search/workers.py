"""Trial worker processes: each loads the search data once, runs one trial at a time, and can be
stopped.

A thread cannot be stopped and a process pool cannot lose a worker without breaking, so every
trial runs in a worker process of its own that a supervisor watches: past the time limit or the
memory cap the supervisor kills it and starts a fresh one for the next trial; so too after a
trial of a family whose import stays behind (Family.retire_worker: torch). The supervisor is
whatever runs the trial task (a thread of the flow, or a Dask worker), so the same limits hold on
every task runner.

One process and its supervision is tasks.search.worker_process's; here are the run's payload,
the pool of its workers, and each process's pools by payload.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import socket
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tasks.cores import available_cores
from tasks.models.families import FAMILIES
from tasks.search.worker_process import TrialLimits, WorkerProcess, take_spare

if TYPE_CHECKING:
    from pathlib import Path

    from tasks.data.sets import SearchData
    from tasks.search.candidates import Candidate, TrialResult, TrialSettings

__all__ = [
    "TrialLimits", "Payload", "WorkerPool", "pool_for", "cut_off_pools", "close_pools",
    "trial_limits",
]

log = logging.getLogger("automl")


def trial_limits(stop_by: float, timeout_minutes: float | None,
                 memory_mb: float | None, run_memory_mb: float | None = None) -> TrialLimits:
    """A trial's limits as it starts: iteration_timeout_minutes, or the time until `stop_by`
    (time.monotonic()) when that is sooner; its worker's memory (max_memory_mb_per_iteration)
    and the run's (max_memory_mb)."""
    left = stop_by - time.monotonic()
    if timeout_minutes is not None and timeout_minutes * 60 <= left:
        return TrialLimits(timeout_minutes * 60, memory_mb, "timeout", run_memory_mb)
    return TrialLimits(max(left, 1.0), memory_mb, "budget", run_memory_mb)


@dataclass(frozen=True)
class Payload:
    """What every trial of a run shares, written once to a file each worker loads once."""

    path: str
    threads: int  # per trial: OMP_NUM_THREADS and friends in the worker's environment
    # On a Dask cluster: the name of the dataset the cluster holds the file's bytes under
    # (flows.workers publishes it); each Dask worker writes them to its own local directory once,
    # so no path need be shared.
    dataset: str | None = None

    @staticmethod
    def write(data: SearchData, settings: TrialSettings, folder: Path, name: str) -> Payload:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.pkl"
        with open(path, "wb") as out:
            pickle.dump((data, settings), out, protocol=pickle.HIGHEST_PROTOCOL)
        return Payload(str(path), max(1, settings.n_jobs))


class WorkerPool:
    """Worker processes for one payload: an idle one takes the next trial, a new one is started
    when none is idle, a killed one is replaced by the next trial that needs a worker."""

    def __init__(self, payload: Payload) -> None:
        self.payload = payload
        self.path: str | None = None  # the file the worker processes load (local_copy)
        self._idle: queue.SimpleQueue[WorkerProcess] = queue.SimpleQueue()
        self._all: list[WorkerProcess] = []
        self._lock = threading.Lock()
        self.cut_off_at: float | None = None  # epoch seconds: running trials stop then
        self.size: int | None = None  # the workers warm() started (the run's concurrency)

    def warm(self, n: int) -> None:
        """Start n workers now, so their start-up overlaps the caller's own work."""
        self.size = n
        for _ in range(n):
            self._idle.put(self._start())

    def _start(self) -> WorkerProcess:
        if self.path is None:
            self.path = local_copy(self.payload)
        worker = (take_spare(self.payload.threads, self.path)
                  or WorkerProcess(self.payload.threads, self.path))
        with self._lock:
            self._all = [w for w in self._all if w.alive] + [worker]
        return worker

    def run(self, candidate: Candidate, limits: TrialLimits) -> TrialResult:
        worker = self._idle_worker()
        family = FAMILIES.get(candidate.family)
        # What the trial imports (torch) would stay in its worker for every later trial: the
        # worker is replaced after it. When the run leaves a core unused (one trial at a time on
        # two cores), the successor loads there while the trial runs, not after it, where the
        # next trial would wait for it (about 1.9 s); else it would be one more process holding
        # the data beside the running ones.
        retire = family is not None and family.retire_worker
        successor = self._start() if retire and self._core_unused() else None
        result = worker.run(candidate, limits, lambda: self.cut_off_at)
        result = replace(result, started_at=worker.sent_at or time.time(), ended_at=time.time())
        if retire:
            alive = worker.alive  # not when the pool was closed, or the trial killed, meanwhile
            worker.stop()
            if successor is not None:
                self._idle.put(successor)
            elif alive:
                self._idle.put(self._start())  # loading while the result is recorded
        elif worker.alive:
            self._idle.put(worker)
        return replace(result, worker=f"{socket.gethostname()}:{os.getpid()}")

    def _core_unused(self) -> bool:
        """Whether the run's trials leave one of this machine's cores idle."""
        return self.size is not None and self.size * self.payload.threads < available_cores()

    def _idle_worker(self) -> WorkerProcess:
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
        if self.path is not None and self.path != self.payload.path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def local_copy(payload: Payload) -> str:
    """The payload's file in this process: its path, or, for a payload the Dask cluster holds,
    its bytes fetched from the cluster and written to this Dask worker's local directory."""
    if payload.dataset is None:
        return payload.path
    from distributed import get_client, get_worker

    data: bytes = get_client().get_dataset(payload.dataset).result()
    path = os.path.join(get_worker().local_directory, os.path.basename(payload.path))
    with open(path, "wb") as out:
        out.write(data)
    return path


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
