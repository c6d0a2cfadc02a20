"""The choice benchmarks/portfolio.py makes from the trials' records: candidates x tables score
and cost matrices, scores normalised per table (best candidate 1, the pool's median 0, clipped),
entries picked greedily by normalised score gained per unit of cost to a power, the list's quality
after k trials or within a budget, and the leave-tables-out check."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from benchmarks.portfolio_pool import Candidate

# What a trial costs beyond its model: the worker round trip, MLflow's run, the predictions
# saved (the flow's median is 105-128 ms: benchmarks/results/2026-12-05-parallel*.md).
OVERHEAD_SECONDS = 0.1
# The greedy choice divides an entry's gain by its mean cost to this power: 1 is gain per
# second, for a time budget; 0 gain per trial, for an iteration budget. On left-out tables 0.5
# was as good as the hand-written list or better on every figure of both kinds (a tie after
# three trials), while 1 lost to it there and 0 within one median trial
# (benchmarks/results/2026-12-06-portfolio.md, "How much the cost counts").
COST_POWER = 0.5


@dataclass(frozen=True)
class Scores:
    """The pool's records as candidates x tables matrices."""

    pool: list[Candidate]
    tables: list[str]
    raw: np.ndarray  # the metric, oriented higher-better; NaN: failed or does not apply
    applies: np.ndarray  # a run on the table would search the candidate's family
    seconds: np.ndarray  # CPU seconds of the trial: featurizing, fitting, predicting
    fits: np.ndarray  # fit_seconds as the run reports them (wall time)

    @property
    def norm(self) -> np.ndarray:
        return normalise(self.raw, self.applies)

    @property
    def cost(self) -> np.ndarray:
        return trial_cost(self.seconds, self.applies)


def matrices(pool: list[Candidate], records: list[dict[str, object]]) -> Scores:
    tables = list(dict.fromkeys(str(r["table"]) for r in records))
    at = {(r["key"], r["table"]): r for r in records}
    shape = (len(pool), len(tables))
    raw, seconds, fits = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    applies = np.zeros(shape, bool)
    for i, candidate in enumerate(pool):
        for j, table in enumerate(tables):
            r: dict[str, Any] = at[(candidate.key, table)]
            if not r["applies"]:
                continue
            applies[i, j] = True
            # Featurizing is done once per table and kind of family and reused: every trial
            # counts it, as a run's estimates do (TrialResult.fit_seconds).
            seconds[i, j] = r["cpu_seconds"] + r["reused_seconds"]
            fits[i, j] = r["fit_seconds"]
            if r["ok"] and r["score"] is not None and np.isfinite(r["score"]):
                raw[i, j] = r["score"] * (1 if r["greater"] else -1)
    return Scores(pool, tables, raw, applies, seconds, fits)



def normalise(raw: np.ndarray, applies: np.ndarray) -> np.ndarray:
    """Per table (column): the best candidate 1, the median of those that ran 0, clipped to
    [0, 1]; a failure 0; NaN where the candidate does not apply."""
    norm = np.full(raw.shape, np.nan)
    for j in range(raw.shape[1]):
        column = raw[applies[:, j], j]
        finite = column[np.isfinite(column)]
        if not len(finite):
            norm[applies[:, j], j] = 0.0
            continue
        best, median = finite.max(), np.median(finite)
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = ((column - median) / (best - median) if best > median
                      else (column >= best).astype(float))
        norm[applies[:, j], j] = np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0)
    return norm


def trial_cost(seconds: np.ndarray, applies: np.ndarray,
               overhead: float = OVERHEAD_SECONDS) -> np.ndarray:
    """Each trial's seconds, overhead included, in units of the table's median trial: a run's
    budget scales with its table, so a second on a small table weighs as much as ten on a large
    one (absolute seconds would let the one slowest table decide every cost). NaN where the
    candidate does not apply."""
    cost = np.where(applies, seconds + overhead, np.nan)
    with warnings.catch_warnings():  # a table no candidate applies to: all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(cost / np.nanmedian(cost, axis=0))


def greedy(norm: np.ndarray, cost: np.ndarray, size: int, *, forced: int | None = None,
           power: float = COST_POWER) -> list[int]:
    """Candidate indices in the order a run should try them: each the one that raises the mean
    over tables of the best normalised score so far the most per unit of cost to the `power`
    (its mean over tables, counting nothing where it does not apply, as a run skips it there);
    `forced` among the first two. Stops early when no candidate adds anything. norm and cost:
    candidates x tables, NaN where the candidate does not apply."""
    applies = np.isfinite(norm)
    gains = np.where(applies, norm, 0.0)
    mean_cost = np.where(applies, cost, 0.0).mean(axis=1)
    best = np.zeros(norm.shape[1])
    chosen: list[int] = []
    while len(chosen) < min(size, len(norm)):
        gain = (np.maximum(gains, best) - best).mean(axis=1)
        ratio = gain / np.maximum(mean_cost, 1e-12) ** power
        ratio[chosen] = -np.inf
        pick = int(np.argmax(ratio))
        if forced is not None and forced not in chosen and (len(chosen) == 1 or gain[pick] <= 0):
            pick = forced
        elif gain[pick] <= 0:
            break
        chosen.append(pick)
        best = np.maximum(best, gains[pick])
    return chosen


def anytime(order: list[int], norm: np.ndarray, cost: np.ndarray,
            trials: tuple[int, ...] = (1, 2, 3, 5, 8), budgets: tuple[float, ...] = ()
            ) -> dict[str, float]:
    """The list's quality on these tables: the mean over tables of the best normalised score
    after the first k entries that apply to a table, and within a budget of cost (the first
    entries whose costs add up to at most it; nothing reached scores 0)."""
    columns = norm.shape[1]
    after = {k: np.zeros(columns) for k in trials}
    within = {b: np.zeros(columns) for b in budgets}
    for j in range(columns):
        mine = [i for i in order if np.isfinite(norm[i, j])]
        best = np.maximum.accumulate([norm[i, j] for i in mine]) if mine else np.zeros(1)
        for k in trials:
            after[k][j] = best[min(k, len(best)) - 1]
        spent = np.cumsum([cost[i, j] for i in mine]) if mine else np.full(1, np.inf)
        for b in budgets:
            reached = np.flatnonzero(spent <= b)
            within[b][j] = best[reached[-1]] if len(reached) else 0.0
    out = {f"{k} trials": float(v.mean()) for k, v in after.items()}
    out |= {f"budget {b:g}": float(v.mean()) for b, v in within.items()}
    return out


def leave_tables_out(norm: np.ndarray, cost: np.ndarray, groups: list[str], today: list[int],
                     *, size: int, forced: int | None, repeats: int, seed: int,
                     trials: tuple[int, ...], budgets: tuple[float, ...],
                     power: float = COST_POWER) -> dict[str, dict[str, list[float]]]:
    """Pick on half the tables (halved within each group, the task), score on the other half;
    each split both ways, the same halves for a given seed. {"learned" | "today": {figure: one
    value per half scored}}."""
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, list[float]]] = {"learned": {}, "today": {}}
    for _ in range(repeats):
        half = np.zeros(len(groups), bool)
        for group in sorted(set(groups)):
            members = rng.permutation([j for j, g in enumerate(groups) if g == group])
            half[members[: len(members) // 2 + rng.integers(len(members) % 2 + 1)]] = True
        for pick_on in (half, ~half):
            learned = greedy(norm[:, pick_on], cost[:, pick_on], size, forced=forced,
                             power=power)
            for name, order in (("learned", learned), ("today", today)):
                figures = anytime(order, norm[:, ~pick_on], cost[:, ~pick_on], trials, budgets)
                for figure, value in figures.items():
                    out[name].setdefault(figure, []).append(value)
    return out
