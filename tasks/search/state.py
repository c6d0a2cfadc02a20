"""The search's state while it runs: every result so far, the best, the leaders the budget plans
the refit for, and what the stopping and pruning rules read. One object, shared by the loop that
updates it and whoever watches it (the flow's recorder, the budget's deadline)."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from tasks.budget import LEADERS
from tasks.search.outcome import SearchOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tasks.metrics import Metric
    from tasks.search.candidates import Candidate, ConfigurationKey, TrialResult

__all__ = ["SearchState", "PRUNE_STARTUP"]

# Finished trials needed before any trial is pruned (Optuna's MedianPruner waits for 5 too).
PRUNE_STARTUP = 5

class SearchState:
    """Results in the order they finished. `history` (a resumed run's finished trials) counts as
    if it had just run."""

    def __init__(self, metric: Metric, families: Iterable[str],
                 history: Iterable[TrialResult] = ()) -> None:
        self.metric, self.families = metric, tuple(families)
        self.started = time.monotonic()
        self.results: list[TrialResult] = []
        self.elapsed: list[float] = []  # seconds from the start to each result
        self.best: TrialResult | None = None
        self.leaders: list[TrialResult] = []  # the best LEADERS, repeats left out
        self.since_best = 0  # sampler trials since the best improved (early stopping)
        self.durations: list[float] = []  # wall seconds of the trials that ran
        # Trials not started and why (the memory limit, a screened configuration not promoted).
        self.skipped: list[str] = []
        self._tried: dict[ConfigurationKey, TrialResult] = {}
        for result in history:
            self.add(result)

    def add(self, result: TrialResult, counted: bool = True) -> bool:
        """Take a finished trial; True when it is the new best. counted=False: a queued first
        point (the portfolio, the defaults), which early stopping does not count: patience is
        for the sampler's trials. A screening job (tasks.search.screening) is neither the best
        nor counted."""
        self.results.append(result)
        self.elapsed.append(time.monotonic() - self.started)
        if result.ok or result.reason == "pruned":  # a run out of time may finish another time
            self._tried.setdefault(result.candidate.key, result)
        score, best = self.score(result), self.best_score  # best_score is None: no best yet
        improved = score is not None and (best is None or self.metric.better(score, best))
        if improved:
            self.best, self.since_best = result, 0
        elif counted and result.candidate.rows is None:
            self.since_best += 1
        if score is not None and result.duplicate_of is None:
            ranked = sorted([*self.leaders, result], key=lambda r: r.metrics[self.metric.name],
                            reverse=self.metric.greater_is_better)
            self.leaders = ranked[:LEADERS]
        return improved

    def score(self, result: TrialResult) -> float | None:
        """The primary metric of a trial that can be chosen: not failed, not a screening job."""
        ok = result.ok and result.candidate.rows is None
        return result.metrics.get(self.metric.name) if ok else None

    @property
    def best_score(self) -> float | None:
        return None if self.best is None else self.score(self.best)

    def repeat_of(self, candidate: Candidate) -> TrialResult | None:
        """The finished trial of this very configuration, if the sampler proposes it again
        (TPE does, once a small space has converged): its result stands, nothing runs."""
        tried = self._tried.get(candidate.key)
        if tried is None:
            return None
        return replace(tried, candidate=candidate, predictions=None, fit_seconds=0.0,
                       predict_seconds=0.0, worker="", duplicate_of=tried.candidate.number)

    def typical_seconds(self) -> float:
        return statistics.median(self.durations[-5:]) if self.durations else 0.0

    def prune_bars(self) -> tuple[float, ...]:
        """Cheap fidelity first (successive halving over the folds, as Optuna's MedianPruner):
        after fold i a new trial must do as well as the median of the finished trials' mean
        score over their first i folds, or stop. A trial is scored on the same rows as every
        other, fold by fold, so the comparison is paired. No bar at the last fold, nor before
        PRUNE_STARTUP trials have finished."""
        finished = [r.fold_scores for r in self.results if r.ok and len(r.fold_scores) > 1]
        if len(finished) < PRUNE_STARTUP:
            return ()
        steps = min(len(scores) for scores in finished) - 1
        with np.errstate(all="ignore"):
            means = np.array([[np.nanmean(f[: i + 1]) for i in range(steps)] for f in finished])
            return tuple(float(np.nanmedian(column)) for column in means.T)

    def outcome(self, stop_reason: str) -> SearchOutcome:
        assert self.best is not None
        return SearchOutcome(tuple(self.results), self.best, stop_reason, tuple(self.elapsed),
                             self.families, tuple(self.skipped))
