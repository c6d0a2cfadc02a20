"""The time budget: experiment_timeout_minutes covers the whole run, from the command's start to
its exit, and every rule that spends it lives here.

- the clock: the command line's start-up counts, up to half the budget;
- the reserve: the search stops at least max(5 s, 10%) before the end;
- the refit plan: the search stops in time to ensemble and refit its best trials and write the
  model;
- the fold count: fewer folds when the budget buys too few trials of the default count;
- the charts: permutation importance takes what the budget leaves it;
- the floor: the smallest budget that still registers a model (smallest_budget);
- a boosting fit's clock: it stops with the rounds it has after its share (boosting_seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from tasks.cores import available_cores
from tasks.errors import ConfigError

__all__ = ["Budget", "Cost", "Affordable", "budget_folds", "finish_seconds", "refit_seconds",
           "reserve_seconds", "smallest_budget", "check_budget", "boosting_seconds", "LEADERS",
           "MIN_BUDGET_SECONDS", "REGISTER_SECONDS", "SHUTDOWN_SECONDS"]

# Start-up counted against the budget is capped at this fraction of it: a budget shorter than
# Prefect's start-up still gets its first trials (and overruns) rather than no model at all.
MAX_STARTUP_FRACTION = 0.5
# Prefect's and MLflow's shutdown after the flow returns is part of the command's run as well
# (measured 6 s on 2 busy cores): the flow's budget ends that much before the command's.
SHUTDOWN_SECONDS = 5.0
# Seconds kept back from the search for refit, logging and registration, at the least.
MIN_RESERVE_SECONDS = 5.0
RESERVE_FRACTION = 0.10
REGISTER_SECONDS = 3.0  # saving, logging and registering the model (measured ~1-2 s on SQLite)
SAVE_SECONDS_PER_MB = 0.01  # and per MB of the pickled model: it is written twice
# The search stops in time to refit this many of its best trials side by side: the final model is
# often an ensemble of them, and one too slow to refit is cut down to what fits. Planning for
# three starved the search where the best trials were slow forests; two keep the best pair.
LEADERS = 2
REFIT_MARGIN = 1.25  # refit estimates are multiplied by this: measured refits ran 0.9-1.1x
# Seconds a default boosting fit (the portfolio's first trial) takes: FIT_SECONDS plus
# SECONDS_PER_WORK per fit row x encoded column x output (the classes, above two). Measured on 2
# cores, one thread a fit: 0.3-1.0 microseconds. An order of magnitude is all the choice needs.
FIT_SECONDS = 0.05
SECONDS_PER_WORK = 0.6e-6
# What the budget should buy: at least this many trials (the portfolio and the families'
# defaults are about 16), after start-up, the refit and registration (about 15 s) and the reserve.
MIN_TRIALS = 20
OVERHEAD_SECONDS = 15.0
HOLDOUT = 0.10  # the validation share of a holdout, when the fold count falls to one
IMPORTANCE_SECONDS = 10.0  # permutation importance aims at this much at most
# The share of the run so far that permutation importance aims at, and the contributions chart
# too: with the other charts (about 1.5 s), they take about a tenth of a small run.
IMPORTANCE_SHARE = 0.05
# The least budget that registers a model: the command's start-up (imports, Prefect's API), one
# cheap trial, its refit, registration and the shutdown, with room for a loaded machine (measured
# on 2 cores: a 15 s budget registers a model on tables of a few thousand rows).
MIN_BUDGET_SECONDS = 15.0
# A boosting trial (all its folds) stops adding rounds after this share of the run's budget, or
# of iteration_timeout_minutes, which would kill it: a 2,000-round CatBoost fit on 40,000 rows
# otherwise holds a worker for most of a one-minute budget and is killed at its end.
BOOSTING_SHARE = 0.25
ITERATION_SHARE = 0.8
# Until the first model exists, new trials may start this long before the end: enough to refit
# one cheap model and register it. A run with no model has nothing to keep the reserve for.
FIRST_MODEL_SECONDS = REGISTER_SECONDS + 1.0


class Cost(Protocol):
    """What a trial's final model costs to refit and write."""

    @property
    def fit_seconds(self) -> float: ...

    @property
    def model_bytes(self) -> int: ...


# Whether refitting these members on all rows fits in the time left (Budget.affords).
Affordable = Callable[[Sequence[Cost]], bool]


def reserve_seconds(budget_seconds: float) -> float:
    """What the search leaves for the final model at the least: max(5 s, 10% of the budget)."""
    return max(MIN_RESERVE_SECONDS, RESERVE_FRACTION * budget_seconds)


@dataclass(frozen=True)
class Budget:
    """The run's clock (time.monotonic() seconds) and its deadlines."""

    minutes: float
    started: float
    shutdown: float = 0.0  # seconds the caller needs after the flow returns, inside the budget
    # Seconds the ensemble step takes between the search and the refit (known once the data is
    # split: tasks.final.stacking.ensemble_seconds); the search plans its end for it.
    ensemble: float = 0.0

    @classmethod
    def start(cls, minutes: float, started_at: float | None = None,
              shutdown: float = 0.0) -> Budget:
        """The budget from started_at (epoch seconds, as it crosses processes: the command
        line's own start) or from now; start-up counts up to MAX_STARTUP_FRACTION of it."""
        now = time.monotonic()
        counted = 0.0
        if started_at is not None:
            counted = min(max(0.0, time.time() - started_at), MAX_STARTUP_FRACTION * minutes * 60)
        return cls(minutes, now - counted, shutdown)

    def planning(self, ensemble: float) -> Budget:
        """This budget, its search ending in time for an ensemble step of `ensemble` seconds."""
        return replace(self, ensemble=ensemble)

    @property
    def end(self) -> float:
        return self.started + self.minutes * 60 - self.shutdown

    @property
    def search_deadline(self) -> float:
        return self.end - reserve_seconds(self.minutes * 60)

    def deadline_after(self, leaders: Sequence[Cost], n_folds: int) -> float:
        """When the search must stop, so the final model can still be refit on all rows: the
        best trials so far (an ensemble's likely members), refit side by side. Before any model
        exists, trials may start until there is just time to refit and register one."""
        if not leaders:
            return max(self.search_deadline, self.end - FIRST_MODEL_SECONDS)
        return min(self.search_deadline,
                   self.end - self.ensemble - finish_seconds(leaders, n_folds))

    def trials_stop(self, leaders: Sequence[Cost], n_folds: int) -> float:
        """When running trials are stopped. Until a trial succeeds there is no model to refit:
        they may use the whole budget, or a small budget on big data ends with nothing."""
        if not leaders:
            return self.end - REGISTER_SECONDS
        return self.deadline_after(leaders, n_folds)

    def affords(self, n_folds: int, planned: Sequence[Cost] = ()) -> Affordable:
        """Whether refitting these members on all rows and registering them, from now, still
        ends within the budget, or costs no more than finishing the `planned` members: the
        search stopped in time for those (deadline_after), and a search that ran to its deadline
        ends a moment past it (the last trials stopped, the workers closed), which must not cost
        the run its ensemble."""
        allowed = finish_seconds(planned, n_folds) if planned else 0.0

        def affordable(members: Sequence[Cost]) -> bool:
            cost = finish_seconds(members, n_folds)
            return time.monotonic() + cost < self.end or cost <= allowed

        return affordable

    def importance_seconds(self) -> tuple[float, float]:
        """(aim, limit) of permutation importance: it aims at IMPORTANCE_SHARE of the run so far
        (at least 1 s, at most IMPORTANCE_SECONDS), and is given up if it cannot fit in a
        quarter of what is left."""
        limit = max(1.0, (self.end - time.monotonic()) / 4)
        aim = min(IMPORTANCE_SECONDS, IMPORTANCE_SHARE * self.elapsed(), limit)
        return max(1.0, aim), limit

    def left(self) -> float:
        """Seconds until the end of the flow's budget (negative once past it)."""
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def finish_seconds(members: Sequence[Cost], n_folds: int) -> float:
    """What the final model of these members costs after the search: its refit (with a margin)
    and its registration, which writes the model twice (model.pkl and the MLflow model): about
    10 ms a MB (a 517 MB ensemble: 0.8 s to pickle, 1.3 s a copy)."""
    megabytes = sum(m.model_bytes for m in members) / 1e6
    return (REFIT_MARGIN * refit_seconds(members, n_folds) + REGISTER_SECONDS
            + SAVE_SECONDS_PER_MB * megabytes)


def refit_seconds(members: Sequence[Cost], n_folds: int) -> float:
    """About how long refitting these trials' models on all rows takes, side by side on the
    cores: a trial fitted n_folds models on (n_folds-1)/n_folds of the rows each, so one model on
    all of them costs its fit time / (n_folds-1); a holdout trial fitted one on 90% of them."""
    each = [m.fit_seconds / (n_folds - 1) if n_folds > 1 else m.fit_seconds / (1 - HOLDOUT)
            for m in members]
    return max(max(each, default=0.0), sum(each) / available_cores())


def budget_folds(folds: int, n_rows: int, work_per_row: int, minutes: float,
                 concurrency: int) -> tuple[int, str]:
    """Cheap fidelity where the budget is short for the data: the most folds among the default,
    3 and 1 (a holdout) with which MIN_TRIALS trials fit in the search's share of the budget,
    and why fewer than the default, if so."""
    budget = minutes * 60
    search = budget - reserve_seconds(budget) - OVERHEAD_SECONDS

    def trial_seconds(k: int) -> float:
        fit_rows = n_rows * (k - 1) / k if k > 1 else n_rows * (1 - HOLDOUT)
        return k * (FIT_SECONDS + SECONDS_PER_WORK * fit_rows * work_per_row)

    for k in sorted({folds, min(folds, 3)}, reverse=True):
        if MIN_TRIALS * trial_seconds(k) / concurrency <= search:
            break
    else:
        k = 1
    if k == folds:
        return folds, ""
    return k, (f"because a {folds}-fold trial would take about {trial_seconds(folds):.0f} s on "
               f"this data, and the {minutes:g}-minute budget should buy at least {MIN_TRIALS} "
               "trials")


def default_trial_seconds(n_rows: int, work_per_row: int) -> float:
    """About how long the portfolio's first trial (default boosting) takes on a holdout."""
    return FIT_SECONDS + SECONDS_PER_WORK * n_rows * (1 - HOLDOUT) * work_per_row


def smallest_budget(n_rows: int, work_per_row: int) -> float:
    """Seconds: the fixed floor, which holds a trial of about a second and its refit, or more
    where one default trial and its refit take longer."""
    trial = default_trial_seconds(n_rows, work_per_row)
    return max(MIN_BUDGET_SECONDS, MIN_BUDGET_SECONDS - 1.0 + (1 + REFIT_MARGIN) * trial)


def check_budget(minutes: float, n_rows: int = 0, work_per_row: int = 0) -> None:
    """Refuse, before any training, a budget too short to register even one cheap model."""
    need = smallest_budget(n_rows, work_per_row)
    if minutes * 60 >= need:
        return
    rounded = math.ceil(need / 5) * 5  # a budget a user would type
    on = (f" on {n_rows:,} rows" if n_rows and need > MIN_BUDGET_SECONDS else "")
    raise ConfigError(
        f"a budget of {minutes * 60:.0f} s is too short to train and register even one default "
        f"model{on}; the smallest budget that works is "
        f"{rounded:.0f} s: set experiment_timeout_minutes={rounded / 60:.4g} or more"
    )


def boosting_seconds(timeout_minutes: float, iteration_timeout_minutes: float | None,
                     folds: int) -> float:
    """How long one fold's boosting fit may add rounds before it stops with those it has."""
    seconds = timeout_minutes * 60 * BOOSTING_SHARE
    if iteration_timeout_minutes is not None:
        seconds = min(seconds, iteration_timeout_minutes * 60 * ITERATION_SHARE)
    return seconds / max(1, folds)
