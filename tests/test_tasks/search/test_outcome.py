"""The search's outcome (tasks.search.outcome): the leaderboard's predict time, known only for a
trial that predicted every validation row."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.metrics import METRICS
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.outcome import SearchOutcome


def trial(number: int, ok: bool = True, **fields) -> TrialResult:
    predictions = np.zeros((2000, 2)) if ok else None
    return TrialResult(Candidate(number, "lightgbm", {}), ok, {"AUC_weighted": 0.8 - number / 100},
                       predictions, fit_seconds=1.0, **fields)


def test_predict_time_is_per_thousand_validation_rows_when_known():
    fast = trial(1, predict_seconds=0.0123456)
    assert fast.predict_ms_per_1k_rows == pytest.approx(6.1728)
    unknown = [trial(2, predict_seconds=0.0),  # never timed
               trial(3, ok=False, predict_seconds=0.01, reason="pruned", error="pruned")]
    assert [t.predict_ms_per_1k_rows for t in unknown] == [None, None]
    board = SearchOutcome((fast, *unknown), fast, "done").leaderboard(METRICS["AUC_weighted"])
    assert [row["predict_ms_per_1k_rows"] for row in board] == [6.173, None, None]
