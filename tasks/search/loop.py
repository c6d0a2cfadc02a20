"""The candidate loop: keep up to `batch_size` trials running, tell each back as it finishes,
ask the next, decide when to stop.

The loop knows nothing of Prefect or MLflow: it is given an evaluator that runs candidates (the
flow submits them as tasks to its worker pool) and a function that records each result (the flow
logs it). With one trial at a time, ask and tell alternate in trial order, so a seeded search is
reproducible; with more, a new trial starts as soon as any one finishes, so a slow trial never
holds the others' cores idle.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import optuna

from tasks.errors import SearchError
from tasks.metrics import Metric
from tasks.search.study import ask_candidate, first_points, tell_result
from tasks.search.candidates import Candidate, TrialResult

__all__ = ["SearchLimits", "SearchOutcome", "Evaluator", "run_search"]

log = logging.getLogger("automl")

Record = Callable[[TrialResult], str | None]  # returns the tracking run id of the trial

# Finished trials needed before any trial is pruned (Optuna's MedianPruner waits for 5 too).
PRUNE_STARTUP = 5


class Evaluator(Protocol):
    """Runs candidates somewhere: a handle per submitted candidate."""

    def submit(self, candidate: Candidate) -> Any: ...

    def first_done(self, handles: list[Any]) -> Any:
        """Block until one of the handles is finished; return it."""

    def result(self, handle: Any) -> TrialResult: ...


@dataclass(frozen=True)
class SearchLimits:
    iterations: int
    deadline: Callable[[], float]  # time.monotonic() after which no new trial starts
    batch_size: int = 1  # trials running at once
    exit_score: float | None = None
    patience: int | None = 20  # None: no early stopping
    prune: bool = True  # a trial worse than the median after a fold stops there


@dataclass(frozen=True)
class SearchOutcome:
    results: tuple[TrialResult, ...]
    best: TrialResult
    stop_reason: str

    def ranked(self, metric: Metric) -> list[TrialResult]:
        ok = [r for r in self.results
              if r.ok and metric.name in r.metrics and r.duplicate_of is None]
        return sorted(ok, key=lambda r: r.metrics[metric.name], reverse=metric.greater_is_better)


class _Progress:
    """What the stopping rules look at."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.results: list[TrialResult] = []
        self.best: TrialResult | None = None
        self.since_best = 0
        self.durations: list[float] = []
        self._tried: dict[tuple[str, tuple[tuple[str, Any], ...]], TrialResult] = {}

    def add(self, result: TrialResult, counted: bool = True) -> None:
        """counted=False: a queued first point (the portfolio, the defaults), which early stopping
        does not count: patience is for the sampler's trials."""
        self.results.append(result)
        if result.ok or result.reason == "pruned":  # a run out of time may finish another time
            self._tried.setdefault(configuration_key(result.candidate), result)
        score = result.metrics.get(self.metric.name) if result.ok else None
        if score is not None and (
            self.best is None or self.metric.better(score, self.best.metrics[self.metric.name])
        ):
            self.best, self.since_best = result, 0
        elif counted:
            self.since_best += 1

    def repeat_of(self, candidate: Candidate) -> TrialResult | None:
        """The finished trial of this very configuration, if the sampler proposes it again
        (TPE does, once a small space has converged): its result stands, nothing runs."""
        tried = self._tried.get(configuration_key(candidate))
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


def configuration_key(candidate: Candidate) -> tuple[str, tuple[tuple[str, Any], ...]]:
    return candidate.family, tuple(sorted(candidate.params.items()))


def run_search(
    study: optuna.Study,
    families: list[str],
    metric: Metric,
    limits: SearchLimits,
    evaluator: Evaluator,
    record: Record,
    history: Sequence[TrialResult] = (),
    retry: Sequence[dict[str, Any]] = (),
) -> SearchOutcome:
    """Run trials until a limit. Resuming an interrupted run, `history` holds its finished trials
    and `retry` the parameters of those it was running, tried first."""
    queue = first_points(study, families, list(retry))
    progress = _Progress(metric)
    for result in history:
        progress.add(result)
    running: dict[Any, tuple[optuna.trial.Trial, float, bool]] = {}
    reason = _stop_reason(limits, progress, 0)
    while True:
        while reason is None and len(running) < limits.batch_size:
            queued = bool(queue)
            trial, candidate = ask_candidate(study, families, queue)
            if (repeat := progress.repeat_of(candidate)) is not None:
                tell_result(study, trial, repeat, metric.name, record(repeat))
                progress.add(repeat, counted=not queued)
                log.info("trial %s repeats trial %d: its result stands", candidate.label,
                         repeat.duplicate_of)
                reason = _stop_reason(limits, progress, len(running))
                continue
            if limits.prune:
                candidate = replace(candidate, prune_bars=progress.prune_bars())
            running[evaluator.submit(candidate)] = (trial, time.monotonic(), queued)
            reason = _stop_reason(limits, progress, len(running))
        if not running:
            break
        handle = evaluator.first_done(list(running))
        trial, started, queued = running.pop(handle)
        result = evaluator.result(handle)
        progress.durations.append(time.monotonic() - started)
        tell_result(study, trial, result, metric.name, record(result))
        progress.add(result, counted=not queued)
        _log_progress(result, metric, progress.best)
        reason = reason or _stop_reason(limits, progress, len(running))
    if progress.best is None:
        if progress.results and all(r.reason == "budget" for r in progress.results):
            raise SearchError(
                f"no trial finished within the time budget ({len(progress.results)} stopped "
                "unfinished), so no model was registered; raise experiment_timeout_minutes or "
                "allow faster models with allowed_models"
            )
        errors = {r.error for r in progress.results if r.error}
        raise SearchError(
            f"all {len(progress.results)} trials failed, so no model was registered; first error: "
            f"{next(iter(errors), 'none recorded')}"
        )
    assert reason is not None
    return SearchOutcome(tuple(progress.results), progress.best, reason)


def _stop_reason(limits: SearchLimits, progress: _Progress, running: int) -> str | None:
    """Why no new trial should start, or None. Running trials are left to finish (the deadline
    stops them through their own time limit)."""
    best, metric = progress.best, progress.metric
    if len(progress.results) + running >= limits.iterations:
        return f"iteration limit ({limits.iterations}) reached"
    if best is not None and limits.exit_score is not None:
        score = best.metrics[metric.name]
        if score == limits.exit_score or metric.better(score, limits.exit_score):
            return f"exit score {limits.exit_score} reached ({score:.4f})"
    if limits.patience is not None and best is not None and progress.since_best >= limits.patience:
        return f"early stopping: {progress.since_best} trials without improvement"
    if time.monotonic() + progress.typical_seconds() >= limits.deadline():
        return "time budget used"
    return None


def _log_progress(result: TrialResult, metric: Metric, best: TrialResult | None) -> None:
    name = result.candidate.label
    if result.reason == "pruned":
        log.info("trial %s %s", name, result.error)
        return
    if not result.ok:
        log.warning("trial %s failed: %s", name, (result.error or "").splitlines()[-1][:200])
        return
    log.info(
        "trial %s %s=%.4f (best %.4f, %s) fit %.1fs",
        name,
        metric.name,
        result.metrics.get(metric.name, float("nan")),
        best.metrics[metric.name] if best else float("nan"),
        best.candidate.label if best else "-",
        result.fit_seconds,
    )
