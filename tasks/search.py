"""The candidate loop: ask a batch, evaluate it on the worker pool, tell it back, decide to stop.

The loop knows nothing of Prefect or MLflow: it is given a function that evaluates a batch of
candidates (the flow submits them as tasks) and one that records each result (the flow logs it).
Asking and telling a whole batch in trial order keeps a seeded search reproducible.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from tasks.errors import SearchError
from tasks.metrics import Metric
from tasks.study import ask_candidate, tell_result
from tasks.trial import Candidate, TrialResult

__all__ = ["SearchLimits", "SearchOutcome", "run_search"]

log = logging.getLogger("automl")

EvaluateBatch = Callable[[list[Candidate]], list[TrialResult]]
Record = Callable[[TrialResult], str | None]  # returns the tracking run id of the trial


@dataclass(frozen=True)
class SearchLimits:
    iterations: int
    deadline: Callable[[], float]  # time.monotonic() after which no new batch starts
    batch_size: int = 1
    exit_score: float | None = None
    patience: int | None = 20  # None: no early stopping


@dataclass(frozen=True)
class SearchOutcome:
    results: tuple[TrialResult, ...]
    best: TrialResult
    stop_reason: str

    def ranked(self, metric: Metric) -> list[TrialResult]:
        ok = [r for r in self.results if r.ok and metric.name in r.metrics]
        return sorted(ok, key=lambda r: r.metrics[metric.name], reverse=metric.greater_is_better)


def run_search(
    study: optuna.Study,
    families: list[str],
    metric: Metric,
    limits: SearchLimits,
    evaluate: EvaluateBatch,
    record: Record,
) -> SearchOutcome:
    results: list[TrialResult] = []
    best: TrialResult | None = None
    since_best = 0
    while (reason := _stop_reason(limits, metric, len(results), best, since_best)) is None:
        size = min(limits.batch_size, limits.iterations - len(results))
        asked = [ask_candidate(study, families) for _ in range(size)]
        for (trial, _), result in zip(asked, evaluate([c for _, c in asked]), strict=True):
            tell_result(study, trial, result, metric.name, record(result))
            results.append(result)
            score = result.metrics.get(metric.name) if result.ok else None
            if score is not None and (best is None or metric.better(score, best.metrics[metric.name])):
                best, since_best = result, 0
            else:
                since_best += 1
            _log_progress(result, metric, best)
    if best is None:
        errors = {r.error for r in results if r.error}
        raise SearchError(
            f"all {len(results)} trials failed, so no model was registered; first error: "
            f"{next(iter(errors), 'none recorded')}"
        )
    return SearchOutcome(tuple(results), best, reason)


def _stop_reason(
    limits: SearchLimits, metric: Metric, done: int, best: TrialResult | None, since_best: int
) -> str | None:
    if done >= limits.iterations:
        return f"iteration limit ({limits.iterations}) reached"
    if best is not None and limits.exit_score is not None:
        score = best.metrics[metric.name]
        if score == limits.exit_score or metric.better(score, limits.exit_score):
            return f"exit score {limits.exit_score} reached ({score:.4f})"
    if limits.patience is not None and best is not None and since_best >= limits.patience:
        return f"early stopping: {since_best} trials without improvement"
    if time.monotonic() >= limits.deadline():
        return "time budget used"
    return None


def _log_progress(result: TrialResult, metric: Metric, best: TrialResult | None) -> None:
    name = result.candidate.label
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
