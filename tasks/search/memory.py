"""The run's memory limit (max_memory_mb): what the run holds, and whether a trial fits in what is
left before it starts.

The run is this process and its children (the trial workers; a local Prefect API server when the
command started one). A trial's need is estimated from the trials that ran before it: the rise of
its worker's resident memory from the trial's start to its peak, per fitted row, the largest seen
for its family, else the largest seen for any family. Before any trial has reported, a trial
starts: there is nothing to estimate from, and the supervisor stops a trial that pushes the run
over the limit (tasks.search.worker_process).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.search.candidates import Candidate, TrialResult

__all__ = ["run_rss_mb", "MemoryGate", "MEMORY_WAITS"]

# Refusals in a row, with no trial running that could hand memory back, after which the search
# stops: nothing the sampler proposes fits.
MEMORY_WAITS = 3


def run_rss_mb(pid: int | None = None) -> float:
    """Resident memory of the process `pid` (this one by default) and all its children, MB."""
    try:
        root = psutil.Process(pid or os.getpid())
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # ended meanwhile
            continue
    return total / 2**20


@dataclass
class MemoryGate:
    """Admits a trial when the run's memory now plus the trial's estimated need stays within
    `limit_mb`."""

    limit_mb: float
    full_rows: int  # fit rows of a trial on all of them (a screening job's are its own)
    measure: Callable[[], float] = run_rss_mb
    per_row: dict[str, float] = field(default_factory=dict)  # family -> MB per fitted row
    refused_in_a_row: int = 0

    def add(self, result: TrialResult) -> None:
        """Learn from a trial that ran: its worker's rise from the trial's start to its peak."""
        if not result.peak_memory_mb or not result.start_memory_mb:
            return
        rows = result.candidate.rows or self.full_rows
        rise = max(0.0, result.peak_memory_mb - result.start_memory_mb) / max(rows, 1)
        family = result.candidate.family
        self.per_row[family] = max(self.per_row.get(family, 0.0), rise)

    def need_mb(self, candidate: Candidate) -> float:
        rate = self.per_row.get(candidate.family, max(self.per_row.values(), default=0.0))
        return rate * (candidate.rows or self.full_rows)

    def refusal(self, candidate: Candidate) -> str | None:
        """Why the candidate may not start now, or None: it may."""
        need = self.need_mb(candidate)
        held = self.measure()
        if held + need <= self.limit_mb:
            self.refused_in_a_row = 0
            return None
        self.refused_in_a_row += 1
        measured = "its family's" if candidate.family in self.per_row else "other families'"
        return (f"not started: it needs about {need:,.0f} MB more (from {measured} earlier "
                f"trials) and the run holds {held:,.0f} MB, so it would pass "
                f"max_memory_mb={self.limit_mb:g}")
