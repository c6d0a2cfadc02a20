"""What a search hands on: every trial's result in the order they finished, the best one, why it
stopped, and when each result came (the charts plot the search against time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.metrics import Metric
    from tasks.search.candidates import TrialResult

__all__ = ["SearchOutcome", "LeaderboardRow"]

# rank, trial, model, <primary metric>, fit_seconds, predict_ms_per_1k_rows,
# predict_ms_per_row, model_bytes, status
LeaderboardRow = dict[str, str | int | float | None]


@dataclass(frozen=True)
class SearchOutcome:
    results: tuple[TrialResult, ...]
    best: TrialResult
    stop_reason: str
    elapsed: tuple[float, ...] = ()  # seconds from the search's start to each result
    families: tuple[str, ...] = ()  # the families searched
    skipped: tuple[str, ...] = ()  # trials not started, and why (the guardrail report's)

    def ranked(self, metric: Metric) -> list[TrialResult]:
        """Successful trials, best first; a repeated configuration counts once, a screening job
        (fitted on a subsample of the rows) not at all."""
        ok = [r for r in self.results if r.ok and metric.name in r.metrics
              and r.duplicate_of is None and r.candidate.rows is None]
        return sorted(ok, key=lambda r: r.metrics[metric.name], reverse=metric.greater_is_better)

    def leaderboard(self, metric: Metric) -> list[LeaderboardRow]:
        """Successful trials best first, then the others (pruned, failed, repeated)."""
        ranked = self.ranked(metric)
        kept = {id(r) for r in ranked}
        rest = [r for r in self.results if id(r) not in kept]
        return [
            {"rank": rank, "trial": r.candidate.number, "model": r.candidate.label,
             metric.name: r.metrics.get(metric.name), "fit_seconds": round(r.fit_seconds, 2),
             "predict_ms_per_1k_rows": _rounded(r.predict_ms_per_1k_rows),
             "predict_ms_per_row": _rounded(r.predict_ms_per_row if r.ok else None),
             "model_bytes": r.model_bytes if r.ok and r.model_bytes else None,
             "status": r.status}
            for rank, r in enumerate(ranked + rest, start=1)
        ]

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    @property
    def screened(self) -> int:
        return sum(r.status == "screened" for r in self.results)

    @property
    def pruned(self) -> int:
        return sum(r.status == "pruned" for r in self.results)


def _rounded(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")
