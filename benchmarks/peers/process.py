"""Run one system in its own process tree: pinned cores, capped threads, a hard time limit, and
the tree's memory, polled every POLL_SECONDS:

- the peak of the tree's RSS, a sum over live processes (so pages they share count twice);
- the peak RSS of each process, with its role (decided from its command line when first seen);
- the peak of the tree's PSS (shared pages split between the processes sharing them): read from
  /proc/PID/smaps_rollup, which walks the page tables, so it costs about 13 ms a GB of resident
  memory (measured on an idle machine: 6.5 ms on a 500 MB process, 10 ms on a 690 MB one with
  pandas and scikit-learn loaded). Read every PSS_EVERY-th poll: read every poll, it took 8.4% of
  a core over automl-flow's runs (four processes), a core the system under test needed on a
  2-core machine. Every PSS_SLOW_EVERY-th poll when a read's mean CPU cost passes
  PSS_SLOW_SECONDS a process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = ["Finished", "ProcessPeak", "ROLES", "role_of", "run_tree", "short_name", "thread_env"]

POLL_SECONDS = 0.2
PSS_SLOW_SECONDS = 0.020  # a PSS read costing more CPU than this a process (mean) is too slow...
PSS_SLOW_EVERY = 10  # ...and is then done every 10th poll only
PSS_EVERY = 5  # a PSS read every second
# A new child whose command line is its parent's may be a fork not yet exec'd: looked at again on
# this many polls before its role is settled (and its peak counted).
FORK_POLLS = 3

# The roles of automl-flow's processes; any other system's tree has a root and "other"s.
ROOT, API, WORKER, OTHER = "root", "api-server", "worker", "other"
ROLES = (ROOT, API, WORKER, OTHER)
_API_MARKS = ("flows.api", "prefect.server", "uvicorn", "create_app")
_WORKER_MARK = "tasks.search.trial_process"


@dataclass(frozen=True)
class ProcessPeak:
    pid: int
    role: str  # one of ROLES
    name: str  # short: the module, script or executable it runs
    peak_rss_mb: float
    first_seen: float  # seconds after spawn, at the polls that saw it first and last
    last_seen: float


@dataclass(frozen=True)
class Finished:
    returncode: int | None  # None: killed at the time limit
    started: float  # epoch seconds at spawn
    seconds: float  # spawn to exit
    peak_rss_mb: float
    stdout: str
    stderr: str
    processes: list[ProcessPeak] = field(default_factory=list)
    peak_pss_mb: float | None = None  # None: never read (the tree ended before a PSS poll)
    pss_every: int = 1  # PSS was read every pss_every-th poll
    pss_seconds: float = 0.0  # CPU seconds spent reading PSS, all polls together
    polls: int = 0


def thread_env(cores: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment with every thread pool sized to the cores the system owns."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_MAX_THREADS", "VECLIB_MAXIMUM_THREADS"):
        env[name] = str(cores)
    env.update(extra or {})
    return env


def role_of(cmdline: list[str]) -> str:
    """A child's role from its command line (the root's is ROOT, by its pid)."""
    text = " ".join(cmdline)
    if _WORKER_MARK in text:
        return WORKER
    if any(mark in text for mark in _API_MARKS):
        return API
    return OTHER


def short_name(cmdline: list[str], fallback: str = "?") -> str:
    """`python -m uvicorn`, `python hgb.py`, `python -c from tasks.search...`: what it runs."""
    if not cmdline:
        return fallback
    exe, args = Path(cmdline[0]).name, cmdline[1:]
    for flag in ("-m", "-c"):
        if flag in args[:-1]:
            return f"{exe} {flag} {args[args.index(flag) + 1][:30]}"
    script = next((a for a in args if not a.startswith("-")), None)
    return f"{exe} {Path(script).name}" if script else exe


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
        tree = _Tree(psutil.Process(proc.pid), clock)
        while True:
            tree.poll()
            if time.monotonic() - clock > limit:
                _kill_tree(tree.root)
                proc.wait()
                break
            try:  # returns at the exit itself, so `seconds` is not a poll late
                proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
        seconds = time.monotonic() - clock
    code = None if seconds > limit else proc.returncode
    return Finished(code, started, seconds, tree.peak_rss / 2**20, out_path.read_text(),
                    log.read_text(), processes=tree.peaks(),
                    peak_pss_mb=None if tree.peak_pss is None else tree.peak_pss / 2**20,
                    pss_every=tree.pss_every, pss_seconds=tree.pss_seconds, polls=tree.polls)


class _Tree:
    """The polled state of one process tree."""

    def __init__(self, root: psutil.Process, clock: float) -> None:
        self.root, self.clock = root, clock
        self.peak_rss = 0
        self.peak_pss: int | None = None
        self.pss_every, self.pss_seconds, self.polls, self.pss_reads = PSS_EVERY, 0.0, 0, 0
        # A child (the root too) still showing its parent's command line has not exec'd yet.
        self.cmdlines: dict[int, list[str]] = {os.getpid(): psutil.Process().cmdline()}
        self.pending: dict[int, int] = {}  # pid: polls seen with its parent's command line
        self.roles: dict[int, tuple[str, str]] = {}  # pid: (role, short name)
        self.rss: dict[int, int] = {}  # pid: peak RSS
        self.seen: dict[int, tuple[float, float]] = {}

    def poll(self) -> None:
        now = time.monotonic() - self.clock
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        self.polls += 1
        total = 0
        live = []
        for p in processes:
            try:
                rss = p.memory_info().rss
                settled = self._settle(p)
            except psutil.Error:
                continue  # exited between listing and reading
            total += rss
            live.append(p)
            if settled:
                self.rss[p.pid] = max(self.rss.get(p.pid, 0), rss)
                if rss or p.pid not in self.seen:  # an exited child not yet reaped has none
                    self.seen[p.pid] = (self.seen.get(p.pid, (now, now))[0], now)
        self.peak_rss = max(self.peak_rss, total)
        if (self.polls - 1) % self.pss_every == 0:
            self._read_pss(live)

    def _settle(self, p: psutil.Process) -> bool:
        """Whether p's role is known, deciding it from its command line when first seen."""
        if p.pid in self.roles:
            return True
        cmdline = p.cmdline()
        self.cmdlines[p.pid] = cmdline
        polls = self.pending.get(p.pid, 0)
        if cmdline == self.cmdlines.get(p.ppid()) and polls < FORK_POLLS:
            self.pending[p.pid] = polls + 1  # maybe a fork not yet exec'd: looked at again
            return False
        role = ROOT if p.pid == self.root.pid else role_of(cmdline)
        self.roles[p.pid] = (role, short_name(cmdline, p.name()))
        return True

    def _read_pss(self, live: list[psutil.Process]) -> None:
        began = time.thread_time()  # the kernel's walk of the page tables is this thread's
        total = 0
        for p in live:
            with contextlib.suppress(psutil.Error):
                total += p.memory_full_info().pss
        self.pss_seconds += time.thread_time() - began
        self.pss_reads += len(live)
        if total:
            self.peak_pss = max(self.peak_pss or 0, total)
        if self.pss_reads and self.pss_seconds / self.pss_reads > PSS_SLOW_SECONDS:
            self.pss_every = PSS_SLOW_EVERY

    def peaks(self) -> list[ProcessPeak]:
        return [ProcessPeak(pid, *self.roles[pid], round(peak / 2**20, 1),
                            round(self.seen[pid][0], 1), round(self.seen[pid][1], 1))
                for pid, peak in self.rss.items()]


def _kill_tree(root: psutil.Process) -> None:
    try:
        processes = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in processes:
        with contextlib.suppress(psutil.Error):
            p.kill()
