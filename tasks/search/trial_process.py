"""The trial worker process's side (tasks.search.workers starts and supervises it): load the
payload once, then evaluate candidates sent over stdin, answering over stdout, each trial with its
own peak memory and its memory handed back after it."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import pickle
import sys
import warnings
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from tasks.models.plugins import load_plugins
from tasks.search.evaluate import evaluate_candidate

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.search.candidates import Candidate, TrialSettings

__all__ = ["serve"]


def serve() -> None:
    """The worker's side: load the payload, say ready, then evaluate candidates until EOF."""
    inbox = Connection(os.dup(0), writable=False)
    outbox = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a library printing to stdout must not corrupt the message stream
    warnings.simplefilter("ignore")  # a trial's warnings are noise; its failure is its result
    load_plugins()
    # A spare worker (tasks.search.worker_process.start_spares) starts before the data exists: it
    # imports the model libraries, then waits here for the payload's path.
    path = sys.argv[1] if len(sys.argv) > 1 else _path_from(inbox)
    if path is None:
        return
    with open(path, "rb") as src:
        # The file Payload.write pickled for this worker: the supervisor's own, not foreign data.
        payload: tuple[SearchData, TrialSettings] = pickle.load(src)  # noqa: S301
    data, settings = payload
    # What is loaded now lives as long as the worker: out of the collector's sight, so the
    # collection after each trial looks at that trial's objects only (120-150 ms otherwise).
    gc.collect()
    gc.freeze()
    outbox.send("ready")
    while True:
        try:
            candidate: Candidate = inbox.recv()
        except EOFError:  # the supervisor closed the pipe or died: nothing more to do
            return
        _reset_peak()
        start = _peak_mb()  # just reset: the resident memory now
        result = evaluate_candidate(candidate, data, settings)
        outbox.send(replace(result, peak_memory_mb=_peak_mb(), start_memory_mb=start))
        del result
        _release_memory()


def _path_from(inbox: Connection) -> str | None:
    try:
        path: str = inbox.recv()
    except EOFError:  # never given a payload: the run ended (or was refused) before it needed us
        return None
    return path


def _reset_peak() -> None:
    """Start the process's high-water mark (VmHWM) afresh, so it is this trial's peak."""
    # Not Linux, or /proc read-only: the peak is then the worker's so far.
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _peak_mb() -> float:
    """The worker's peak resident memory since _reset_peak (MB), read from the kernel."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource  # elsewhere: the lifetime peak (ru_maxrss is KiB on Linux, bytes on macOS)

    scale = 2**20 if sys.platform == "darwin" else 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1)


def _release_memory() -> None:
    """Hand a finished trial's memory back to the system: the worker waits between trials
    holding what its largest trial took, beside a sibling at its own peak."""
    gc.collect()
    if sys.platform.startswith("linux"):
        # glibc keeps freed heap pages unless asked; musl and others have no malloc_trim.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)
