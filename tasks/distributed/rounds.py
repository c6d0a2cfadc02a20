"""How many boosting rounds a distributed trial can afford, decided before it starts: a
distributed fit cannot be stopped half-way."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from tasks.distributed.boosting import Fitted
    from tasks.types import Params

__all__ = ["Rounds", "MIN_ROUNDS"]

MAX_ROUNDS = 5000
ROUNDS_PER_UNIT_RATE = 100  # the rounds ceiling is this over the learning rate (0.1: 1,000)
MIN_ROUNDS = 20  # a trial that cannot afford this many rounds is not started
TRIAL_SHARE = 0.5  # one trial takes at most this share of the search time left
# Seconds per round per million cells (training rows x columns) on one worker thread, before a
# trial of the family has been timed; about three times what 2 workers measured on 900,000 x 20.
PRIOR_SECONDS = {"lightgbm": 0.02, "xgboost": 0.04}
TRIAL_OVERHEAD = 3.0  # the workers' network set-up and the scoring, per trial
SAFETY = 1.3  # measured seconds per round are multiplied by this


@dataclass
class Rounds:
    """How many boosting rounds a trial can afford: its learning rate's ceiling, cut to its share
    of the search time left at the seconds per round its family was measured at (a distributed
    fit cannot be stopped half-way, so it must be sized before it starts)."""

    cells: float  # training rows x columns
    threads: int  # worker threads on the cluster
    measured: dict[str, float] = field(default_factory=dict)  # family -> seconds per round

    def per_round(self, family: str) -> float:
        if family in self.measured:
            return self.measured[family] * SAFETY
        return PRIOR_SECONDS[family] * self.cells / 1e6 / max(self.threads, 1)

    def affordable(self, family: str, params: Params, seconds_left: float) -> int:
        rate = cast("float", params["learning_rate"])
        ceiling = min(MAX_ROUNDS, math.ceil(ROUNDS_PER_UNIT_RATE / rate))
        share = TRIAL_SHARE * seconds_left - TRIAL_OVERHEAD
        return min(ceiling, int(share / self.per_round(family)))

    def observe(self, family: str, fitted: Fitted) -> None:
        seconds = max(fitted.fit_seconds - TRIAL_OVERHEAD, 0.1) / max(fitted.trained_rounds, 1)
        self.measured[family] = max(self.measured.get(family, 0.0), seconds)
