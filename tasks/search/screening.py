"""Screening on a subsample of the rows, so a large table still gets tens of trials.

On a holdout of SCREEN_MIN_FIT_ROWS fit rows or more, a new configuration is first a screening
job: fitted on a sixteenth of the fit rows (the same rows for every job of the run), scored on
every validation row. The best quarter of the screened configurations are promoted, as jobs of
their own, to all the fit rows: asynchronous successive halving (ASHA, Li et al. 2018; FLAML's
sample-size growth), with promotions decided as each screening job ends, so the ranking forms
from jobs that take seconds rather than from whole trials. Only a trial on all the fit rows can
be chosen, ensembled and refit; the run's first configuration (the portfolio's strongest fast
default) runs on all of them at once, so a model exists early.

A promotion starts only when its time, estimated before it starts from its own screening job and
from how the run's first configuration grew from the rung to all the rows (it is screened as
well, second), fits before the search's deadline, and, for a booster, before its fit's clock: a
booster cut there keeps fewer rounds than it needs. Otherwise it is skipped and the reason logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tasks.metrics import Metric
    from tasks.search.candidates import Candidate, ConfigurationKey, TrialResult
    from tasks.types import Array

__all__ = ["Screening", "screening_rungs", "screening_rows", "estimate_seconds",
           "SCREEN_MIN_FIT_ROWS", "SCREEN_SHARE", "ETA"]

log = logging.getLogger("automl")

# Below this many fit rows a full trial takes seconds on 2 cores: screening would save little and
# rank configurations on too few rows (benchmarks/results/2026-12-07-screening.md: a sixteenth of
# 45,000-100,000 rows ranked them at Spearman 0.48-0.86).
SCREEN_MIN_FIT_ROWS = 200_000
SCREEN_SHARE = 16  # a screening job fits 1/SCREEN_SHARE of the fit rows
ETA = 4  # the best 1/ETA of the screened configurations are promoted (ASHA's reduction factor)
# A promotion's time: its screening job's fit time scaled by the rows to this power, times the
# margin. Boosting and linear models grow about linearly in the rows (more rows, more rounds, but
# the fixed costs shrink in share); trees of unbounded depth split more levels on more rows;
# a kernel SVM solves a problem quadratic in the rows; KNN predicts against every fit row.
COST_EXPONENT = {"random_forest": 1.2, "extra_trees": 1.2, "decision_tree": 1.2, "svm": 2.0,
                 "knn": 1.5}
ESTIMATE_MARGIN = 1.3
# Families whose fit stops adding rounds (or epochs) at the boosting clock and keeps what it has
# (tasks.models.pipeline.fit_model); then they predict the validation rows.
CLOCKED = frozenset({"lightgbm", "xgboost", "catboost", "mlp"})


def screening_rungs(fit_rows: Sequence[int]) -> tuple[int, ...]:
    """The screening jobs' fit rows (one rung), or () when every trial fits all rows: screening
    needs a single fold (a holdout or a given validation set) of SCREEN_MIN_FIT_ROWS rows."""
    if len(fit_rows) != 1 or fit_rows[0] < SCREEN_MIN_FIT_ROWS:
        return ()
    return (fit_rows[0] // SCREEN_SHARE,)


def screening_rows(y: Array, rows: int, seed: int, classification: bool) -> Array:
    """Positions (sorted) of `rows` of the fold's fit rows whose targets are `y`: stratified by
    class for classification, the same for every job of the run."""
    from sklearn.model_selection import train_test_split

    positions = np.arange(len(y))
    if rows >= len(y):
        return positions
    stratify = y if classification and np.unique(y).size > 1 else None
    try:
        chosen, _ = train_test_split(positions, train_size=rows, random_state=seed,
                                     stratify=stratify)
    except ValueError:  # a class too rare to stratify on
        chosen, _ = train_test_split(positions, train_size=rows, random_state=seed)
    return np.sort(chosen)


def model_seconds(result: TrialResult) -> float:
    """A trial's fitting time without its featurizing, which is the whole fold's whatever the
    rows fitted (and reused from the worker's cache)."""
    return max(0.0, result.fit_seconds - result.featurize_seconds)


def estimate_seconds(screened: TrialResult, growth: float) -> float:
    """About how long the screened configuration takes on all the fit rows: its featurizing plus
    its model's time times `growth` (Screening.growth), with a margin."""
    return float(screened.featurize_seconds + ESTIMATE_MARGIN * model_seconds(screened) * growth)


@dataclass
class Screening:
    """The screening jobs' results and the promotions made from them, for the candidate loop."""

    rungs: tuple[int, ...]  # screening jobs' fit rows; () when the run does not screen
    full_rows: int  # the fold's fit rows
    metric: Metric
    clock: float | None = None  # a boosting fit's time limit (TrialSettings.fit_seconds)
    screened: list[TrialResult] = field(default_factory=list)
    promoted: set[ConfigurationKey] = field(default_factory=set)  # promoted or given up
    full_started: bool = False  # a trial on all the fit rows has been handed to a worker
    skipped: list[str] = field(default_factory=list)  # why promotions did not start
    # The run's first configuration, run on all the fit rows and then screened too (its twin):
    # the pair measures how this table's fitting time grows from the rung to all the rows.
    first: Candidate | None = None
    twin_asked: bool = False
    full: dict[ConfigurationKey, TrialResult] = field(default_factory=dict)

    def rows_for_new(self) -> int | None:
        """A new configuration's fit rows: all for the run's first, then the screening rung."""
        if not self.rungs or not self.full_started:
            return None
        return self.rungs[0]

    def twin(self) -> Candidate | None:
        """The first configuration, to screen next (once), or None."""
        if not self.rungs or self.first is None or self.twin_asked:
            return None
        self.twin_asked = True
        return replace(self.first, rows=self.rungs[0])

    def started(self, candidate: Candidate) -> None:
        if candidate.rows is None:
            self.full_started = True
            self.first = self.first or candidate
            self.promoted.add(candidate.key)  # on all rows already: nothing to promote

    def add(self, result: TrialResult) -> None:
        if not result.ok or self._score(result) is None:
            return
        if result.candidate.rows is not None:
            self.screened.append(result)
        else:
            self.full[result.candidate.key] = result

    def growth(self, family: str) -> float:
        """How many times longer a model of `family` takes on all the fit rows than on the rung:
        measured on this table by the first configuration and its twin, for a family whose time
        grows faster than the rows times the rows' ratio to that power less one; before the pair
        has run, the rows' ratio to the family's power."""
        ratio = self.full_rows / self.rungs[0]
        exponent = COST_EXPONENT.get(family, 1.0)
        pairs = [(self.full[key], r) for r in self.screened
                 if (key := replace(r.candidate, rows=None).key) in self.full]
        measured = [model_seconds(full) / model_seconds(twin) for full, twin in pairs
                    if model_seconds(twin) > 0]
        if not measured:
            return float(ratio ** exponent)
        return float(max(measured) * ratio ** (exponent - 1.0))

    def promotion(self, now: Callable[[], float], deadline: float) -> TrialResult | None:
        """The screened result to run next on all fit rows, if any: the best of the top 1/ETA of
        the screened configurations not yet promoted, whose estimated time fits before
        `deadline` (time.monotonic()); one that does not fit is given up, its reason logged."""
        ranked = sorted(self.screened, key=lambda r: self._score(r) or 0.0,
                        reverse=self.metric.greater_is_better)
        for result in ranked[: len(ranked) // ETA]:
            key = replace(result.candidate, rows=None).key
            if key in self.promoted:
                continue
            self.promoted.add(key)
            rows = result.candidate.rows
            assert rows is not None
            family = result.candidate.family
            seconds = estimate_seconds(result, self.growth(family))
            left = deadline - now()
            # A booster cut by its clock keeps the rounds it had: fewer than on the rung, a worse
            # model than the screened one.
            clocked = family in CLOCKED and self.clock is not None and (
                seconds - result.featurize_seconds > self.clock)
            if seconds > left or clocked:
                limit = (f"its fit stops at {self.clock:.0f} s" if clocked else
                         f"{max(left, 0):.0f} s left in the search")
                why = (f"{result.candidate.label} not promoted to all {self.full_rows:,} rows: "
                       f"about {seconds:.0f} s estimated from {result.fit_seconds:.1f} s on "
                       f"{rows:,} rows, and {limit}")
                log.info("%s", why)
                self.skipped.append(why)
                continue
            return result
        return None

    def _score(self, result: TrialResult) -> float | None:
        value = result.metrics.get(self.metric.name)
        return None if value is None or not np.isfinite(value) else float(value)

