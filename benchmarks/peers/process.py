"""Run one system in its own process tree: pinned cores, capped threads, a hard time limit, and
the tree's peak resident memory, polled (a sum over live processes, so shared pages count twice).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = ["Finished", "run_tree", "thread_env"]

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Finished:
    returncode: int | None  # None: killed at the time limit
    started: float  # epoch seconds at spawn
    seconds: float  # spawn to exit
    peak_rss_mb: float
    stdout: str
    stderr: str


def thread_env(cores: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with every thread pool sized to the cores the system owns."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_MAX_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[name] = str(cores)
    env.update(extra or {})
    return env


def run_tree(
    command: list[str], *, cores: list[int], limit: float, env: dict[str, str], cwd: Path,
    log: Path,
) -> Finished:
    """Run command to its end or to `limit` seconds; stdout is kept, stderr goes to `log`."""

    def pin() -> None:
        os.sched_setaffinity(0, cores)  # inherited by every process the system starts

    started, clock = time.time(), time.monotonic()
    out_path = log.with_suffix(".stdout")
    with open(out_path, "w") as out, open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=cwd, preexec_fn=pin)
        root = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(root))
            if time.monotonic() - clock > limit:
                _kill_tree(root)
                proc.wait()
                break
            time.sleep(POLL_SECONDS)
        seconds = time.monotonic() - clock
    code = None if seconds > limit else proc.returncode
    return Finished(code, started, seconds, peak / 2**20, out_path.read_text(), log.read_text())


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in processes:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass  # exited between listing and reading
    return total


def _kill_tree(root: psutil.Process) -> None:
    try:
        processes = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in processes:
        try:
            p.kill()
        except psutil.Error:
            pass
