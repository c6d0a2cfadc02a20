"""Greedy ensemble selection with replacement (Caruana et al. 2004), Azure's VotingEnsemble.

Works on the validation (or out-of-fold) predictions the trials already made: no refitting,
so it costs milliseconds. The ensemble is chosen only if it beats the best single model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from tasks.metrics import Metric, score_all
from tasks.split import SearchData
from tasks.trial import TrialResult

__all__ = ["Choice", "choose_model"]


@dataclass(frozen=True)
class Choice:
    """The final model before refitting: members with weights (one member: a single model)."""

    members: tuple[TrialResult, ...]
    weights: tuple[float, ...]
    metrics: dict[str, float]  # on the validation rows

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def label(self) -> str:
        if not self.is_ensemble:
            return self.members[0].candidate.label
        return "VotingEnsemble(" + ", ".join(m.candidate.label for m in self.members) + ")"

    @property
    def predictions(self) -> np.ndarray:
        """The validation (or out-of-fold) predictions of the choice: the members' blend."""
        stacked = np.stack([m.predictions for m in self.members])
        return np.average(stacked, axis=0, weights=self.weights)


def choose_model(
    ranked: list[TrialResult], data: SearchData, metric: Metric, *, rounds: int, enabled: bool
) -> Choice:
    best = ranked[0]
    single = Choice((best,), (1.0,), best.metrics)
    pool = [r for r in ranked[:rounds] if r.predictions is not None]
    if not enabled or len(pool) < 2:
        return single
    counts = _greedy_selection(pool, data, metric, rounds)
    if len(counts) < 2:
        return single
    members = tuple(pool[i] for i in sorted(counts))
    weights = tuple(float(counts[i]) for i in sorted(counts))
    blended = np.average(np.stack([m.predictions for m in members]), axis=0, weights=weights)
    metrics = score_all(
        data.task, data.y_valid, blended, data.weights_valid, data.y_range, data.positive
    )
    if metric.name not in metrics or not metric.better(metrics[metric.name], best.metrics[metric.name]):
        return single
    return Choice(members, weights, metrics)


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
