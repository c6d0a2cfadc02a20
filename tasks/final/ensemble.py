"""Choose the final model: the best single trial, Azure's VotingEnsemble (greedy selection with
replacement, Caruana et al. 2004) or Azure's StackEnsemble (tasks.final.stacking), by the primary
metric on the same validation (or out-of-fold) rows.

Both ensembles work on the predictions the trials already made: no refitting, so choosing costs
milliseconds to a few seconds. An ensemble is chosen only if it beats the best single model.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import TYPE_CHECKING, cast

import numpy as np

from tasks.final.calibration import calibrate
from tasks.final.choice import STACK, VOTING, Choice, predictions_of
from tasks.final.stacking import pick_members, stack_metrics, stack_predictions
from tasks.final.thresholds import tune_threshold
from tasks.metrics import score_all

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tasks.budget import Affordable, Cost
    from tasks.data.sets import SearchData
    from tasks.metrics import Metric
    from tasks.search.candidates import TrialResult

__all__ = ["choose_model", "final_choice", "voting_ensemble", "stack_ensemble", "fast_enough"]

log = logging.getLogger("automl")


def choose_model(
    ranked: list[TrialResult], data: SearchData, metric: Metric, *, rounds: int, enabled: bool,
    stack: bool = True, seed: int = 0, affordable: Affordable = lambda members: True,
    max_ms_per_row: float | None = None,
) -> Choice:
    """The best of the single best trial and the ensembles whose refit fits in the time left:
    an ensemble too slow to refit gives up its costliest member and is chosen again. With
    `max_ms_per_row`, only trials (and ensembles, by their members' summed one-row times) that
    predict a row within it; the fastest trial when none does."""
    ranked = fast_enough(ranked, max_ms_per_row)
    if max_ms_per_row is not None:
        affordable = _quick(affordable, max_ms_per_row)
    best = ranked[0]
    single = Choice((best,), (1.0,), best.metrics)
    pool = [r for r in ranked[:rounds] if r.predictions is not None and affordable((r,))]
    if not enabled or len(pool) < 2:
        return single
    chosen = single
    voting = _within(lambda p: _greedy_members(p, data, metric, rounds), pool, affordable)
    options = [voting_ensemble(voting, data, metric, rounds)] if voting else []
    if stack:
        members = _within(pick_members, pool, affordable)
        options.append(stack_ensemble(members, data, seed) if members else None)
    for option in options:
        if option is not None and metric.name in option.metrics and metric.better(
            option.metrics[metric.name], chosen.metrics[metric.name]
        ):
            chosen = option
    return chosen


def final_choice(
    ranked: list[TrialResult], data: SearchData, metric: Metric, *, rounds: int, enabled: bool,
    stack: bool = True, seed: int = 0, affordable: Affordable = lambda members: True,
    max_ms_per_row: float | None = None, onnx: bool = False,
) -> Choice:
    """choose_model's choice, its probabilities calibrated where the metric reads them
    (tasks.final.calibration), its binary labels at a tuned threshold where the metric reads
    labels (tasks.final.thresholds). onnx: only what converts to ONNX, so neither of those, nor
    a StackEnsemble."""
    chosen = choose_model(ranked, data, metric, rounds=rounds, enabled=enabled,
                          stack=stack and not onnx, seed=seed, affordable=affordable,
                          max_ms_per_row=max_ms_per_row)
    if onnx or (chosen.stacked is None and any(m.predictions is None for m in chosen.members)):
        return chosen
    return tune_threshold(calibrate(chosen, data, metric), data, metric)


def _row_ms(trial: TrialResult) -> float:
    # Unknown (a trial resumed from an older run) cannot be shown to meet a limit.
    return math.inf if trial.predict_ms_per_row is None else trial.predict_ms_per_row


def fast_enough(ranked: list[TrialResult], max_ms_per_row: float | None) -> list[TrialResult]:
    """The ranked trials that predict one row within `max_ms_per_row` (all without a limit);
    when none does, the fastest alone, and the log says so: a run still ends with a model."""
    if max_ms_per_row is None or not ranked:
        return ranked
    fast = [r for r in ranked if _row_ms(r) <= max_ms_per_row]
    if fast:
        return fast
    fastest = min(ranked, key=_row_ms)
    log.warning("no trial predicts one row within max_predict_ms_per_row=%g ms, so the fastest, "
                "%s at %.3g ms per row, is the final model", max_ms_per_row,
                fastest.candidate.label, _row_ms(fastest))
    return [fastest]


def _quick(affordable: Affordable, max_ms_per_row: float) -> Affordable:
    """`affordable`, and an ensemble's members' one-row times add up to within the limit (they
    all predict each row)."""
    def quick(members: Sequence[Cost]) -> bool:
        # The pools hold trials (budget.Cost is what refit-time estimates read of them).
        row_ms = sum(_row_ms(cast("TrialResult", m)) for m in members)
        return row_ms <= max_ms_per_row and affordable(members)

    return quick


def _within(
    members_of: Callable[[list[TrialResult]], list[TrialResult]], pool: list[TrialResult],
    affordable: Affordable,
) -> list[TrialResult]:
    """The members an ensemble takes from the pool, chosen again without the costliest one while
    refitting them would not fit in the time left; [] when no two do."""
    while len(pool) >= 2:
        members = members_of(pool)
        if len(members) < 2 or affordable(members):
            return members if len(members) >= 2 else []
        costliest = max(members, key=lambda m: m.fit_seconds)
        pool = [r for r in pool if r is not costliest]
    return []


def _greedy_members(
    pool: list[TrialResult], data: SearchData, metric: Metric, rounds: int
) -> list[TrialResult]:
    return [pool[i] for i in sorted(_greedy_selection(pool, data, metric, rounds))]


def voting_ensemble(
    pool: list[TrialResult], data: SearchData, metric: Metric, rounds: int
) -> Choice | None:
    """Caruana's greedy blend of the pool, or None when it picks a single member."""
    counts = _greedy_selection(pool, data, metric, rounds)
    if len(counts) < 2:
        return None
    members = tuple(pool[i] for i in sorted(counts))
    weights = tuple(float(counts[i]) for i in sorted(counts))
    blended = np.average(np.stack([predictions_of(m) for m in members]), axis=0, weights=weights)
    metrics = score_all(
        data.task, data.y_valid, blended, data.weights_valid, data.y_range, data.positive
    )
    return Choice(members, weights, metrics, VOTING)


def stack_ensemble(pool: list[TrialResult], data: SearchData, seed: int) -> Choice | None:
    """A meta-learner over the pool's most diverse top members, scored out of fold."""
    members = pick_members(pool)
    if len(members) < 2:
        return None
    stacked = stack_predictions(members, data, seed)
    if stacked is None:
        return None
    pred, meta = stacked
    return Choice(tuple(members), tuple(1.0 for _ in members), stack_metrics(pred, data), STACK,
                  meta, stacked=pred)


def _greedy_selection(
    pool: list[TrialResult], data: SearchData, metric: Metric, rounds: int
) -> Counter[int]:
    y, w = data.y_valid, data.weights_valid
    counts: Counter[int] = Counter()
    total = np.zeros_like(pool[0].predictions)
    for size in range(1, rounds + 1):
        scores = [
            metric(y, (total + r.predictions) / size, w, data.y_range, data.positive) for r in pool
        ]
        pick = int(np.argmax(scores) if metric.greater_is_better else np.argmin(scores))
        counts[pick] += 1
        total += pool[pick].predictions
    return counts
