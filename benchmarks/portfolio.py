"""Learn search_spaces/portfolio.yaml on the meta tables (AutoGluon zeroshot / FLAML zero-shot).

1. A pool of candidates: every searched family's YAML defaults, today's portfolio entries, and
   --samples points drawn from each family's space by Optuna's scrambled Sobol sampler (seeded).
2. Each candidate on each table of shared/datasets/meta/ (never the benchmark tables) as a run's
   trial: the run's default metric, its early stopping and boosting clock (--fit-seconds), one
   thread, on one seeded 75/25 holdout of at most --max-rows training rows. Every (candidate,
   table) is appended to --cache as it finishes, so a rerun resumes.
3. Scores normalised per table (best candidate 1, the pool's median 0, clipped); entries picked
   greedily by the mean over tables of the best normalised score so far gained per unit of cost
   to a power (cost: a trial's CPU seconds over the table's median trial), HistGradientBoosting's
   defaults forced among the first two.
4. Leave-tables-out check (pick on half the tables, score on the other half, against today's
   portfolio); with --write, search_spaces/portfolio.yaml and the results file are rewritten.

    .venv/bin/python -m benchmarks.portfolio [--samples 6] [--max-rows 5000] [--entries 14]
        [--tables a,b] [--write]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

if TYPE_CHECKING:
    from tasks.types import Params

ROOT = Path(__file__).resolve().parents[1]
META = ROOT.parent / "shared" / "datasets" / "meta"
CACHE = ROOT.parent / "scratch" / "portfolio"
TASKS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
SEARCHED = ("lightgbm", "xgboost", "catboost", "gradient_boosting", "random_forest",
            "extra_trees", "logistic_regression", "elastic_net")
BASELINE = "gradient_boosting"  # its first default must be among the first two entries
VALIDATION = 0.25
# What a trial costs beyond its model: the worker round trip, MLflow's run, the predictions
# saved (the flow's median is 105-128 ms: benchmarks/results/2026-12-05-parallel*.md).
OVERHEAD_SECONDS = 0.1
# The greedy choice divides an entry's gain by its mean cost to this power: 1 is gain per
# second, for a time budget; 0 gain per trial, for an iteration budget. On left-out tables 0.5
# was as good as the hand-written list or better on every figure of both kinds (a tie after
# three trials), while 1 lost to it there and 0 within one median trial
# (benchmarks/results/2026-12-06-portfolio.md, "How much the cost counts").
COST_POWER = 0.5
# Searched parameters left at the family's first default in the drawn points: engineered
# features (tasks.features.engineered) were being added while this was written, and an entry
# that sets a parameter the space may still lose would stop every run at the door.
PINNED = frozenset({"engineered_features"})
# search_spaces/portfolio.yaml as written by hand before this script (2026-12-06): in the pool,
# and the list the learned one is compared with.
HAND_WRITTEN: list[dict[str, object]] = [
    {"family": "lightgbm"},
    {"family": "gradient_boosting"},
    {"family": "catboost"},
    {"family": "random_forest"},
    {"family": "logistic_regression"},
    {"family": "elastic_net"},
    {"family": "lightgbm", "params": {
        "n_estimators": 300, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 10,
        "subsample": 0.8, "colsample_bytree": 0.6, "reg_lambda": 1.0}},
    {"family": "extra_trees"},
    {"family": "xgboost", "params": {
        "n_estimators": 300, "learning_rate": 0.05, "max_depth": 4, "min_child_weight": 1.0,
        "subsample": 0.8, "colsample_bytree": 0.7, "reg_lambda": 1.0}},
    {"family": "gradient_boosting", "params": {
        "max_iter": 300, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 20,
        "l2_regularization": 1.0, "max_features": 0.7}},
    {"family": "lightgbm", "params": {
        "n_estimators": 500, "learning_rate": 0.03, "num_leaves": 63, "min_child_samples": 20,
        "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 3.0}},
]


@dataclass(frozen=True)
class Candidate:
    family: str
    params: Params  # a complete point of the family's space
    origin: str  # "default" (or "default 2"...), "portfolio" (the hand-written file), "sampled"

    @property
    def key(self) -> str:
        return f"{self.family} {json.dumps(self.params, sort_keys=True)}"


# ---- 1. the pool ---------------------------------------------------------------------------


def candidate_pool(samples: int, seed: int) -> list[Candidate]:
    """Defaults first, then today's portfolio, then the sampled points, without repeats."""
    from tasks.search.spaces import load_space

    pool = [Candidate(f, dict(p), "default" if k == 0 else f"default {k + 1}")
            for f in SEARCHED for k, p in enumerate(load_space(f).defaults)]
    pool += hand_written()
    for index, family in enumerate(SEARCHED):
        pool += [Candidate(family, p, "sampled") for p in _sampled(family, samples, seed + index)]
    unique: dict[str, Candidate] = {}
    for candidate in pool:
        unique.setdefault(candidate.key, candidate)
    return list(unique.values())


def hand_written() -> list[Candidate]:
    """The former hand-written portfolio, its entries completed as the run completes them."""
    from tasks.search.portfolio import parse_portfolio

    return [Candidate(f, dict(p), "portfolio") for f, p in parse_portfolio(HAND_WRITTEN)]


def _sampled(family: str, n: int, seed: int) -> list[Params]:
    """n points of the family's space, spread evenly (Sobol), floats kept to 3 digits."""
    import optuna

    from tasks.search.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(family)
    first = space.defaults[0] if space.defaults else {}
    drawn = {k: d for k, d in space.params.items() if k not in PINNED or k not in first}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(seed=seed, scramble=True,
                                             warn_independent_sampling=False)
    study = optuna.create_study(sampler=sampler)  # in memory, thrown away
    points = []
    for _ in range(n):
        trial = study.ask(drawn)
        values = {k: _rounded(v, space.params[k]) for k, v in trial.params.items()}
        points.append({k: values[k] if k in values else first[k] for k in space.params})
        study.tell(trial, 0.0)
    return points


def _rounded(value: Any, dist: object) -> Any:
    from optuna.distributions import FloatDistribution

    if not isinstance(dist, FloatDistribution) or not isinstance(value, float):
        return value
    return min(max(float(f"{value:.3g}"), dist.low), dist.high)


# ---- 2. evaluation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    task: str
    metric: str
    greater: bool  # the metric is better higher
    families: tuple[str, ...]  # the families a run would search on it


def evaluate(pool: list[Candidate], tables: list[dict[str, str]], cache: Path, *,
             max_rows: int, fit_seconds: float, seed: int) -> list[dict[str, object]]:
    """Every (candidate, table) record, from the cache or run now (and appended to it)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["table"], r["key"]): r for r in _read(cache)}
    records = []
    for entry in tables:
        todo = [c for c in pool if (entry["name"], c.key) not in done]
        if todo:
            _run_table(entry, todo, cache, done, max_rows, fit_seconds, seed)
        records += [done[(entry["name"], c.key)] for c in pool]
    return records


def _read(cache: Path) -> list[dict[str, object]]:
    if not cache.exists():
        return []
    return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]


def _run_table(entry: dict[str, str], todo: list[Candidate], cache: Path,
               done: dict[tuple[object, object], dict[str, object]], max_rows: int,
               fit_seconds: float, seed: int) -> None:
    from tasks.config import parse_config
    from tasks.data.inspect import inspect_data
    from tasks.data.split import SplitPlan, split_data
    from tasks.metrics import early_stopping_watch
    from tasks.search.candidates import Candidate as Trial
    from tasks.search.candidates import TrialSettings
    from tasks.search.evaluate import evaluate_candidate

    task = TASKS[entry["task"]]
    path = META / entry["file"]
    frame = _subsample(pd.read_parquet(path), entry["target"], task,
                       math.ceil(max_rows / (1 - VALIDATION)), seed)
    # As a run holding out a quarter: the default metric, its early stopping, its families.
    config = parse_config(training_data=str(path), target=entry["target"], task=task,
                          validation_size=VALIDATION, random_state=seed)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    n_classes = None if data.classes is None else len(data.classes)
    settings = TrialSettings(profile.roles, seed, 1, featurize=config.featurize,
                             early_stopping=early_stopping_watch(profile.metric, n_classes),
                             metric=profile.metric.name, fit_seconds=fit_seconds)
    table = Table(entry["name"], task, profile.metric.name, profile.metric.greater_is_better,
                  profile.families)
    with cache.open("a") as out:
        for number, candidate in enumerate(todo):
            record: dict[str, object] = {"table": table.name, "key": candidate.key,
                                         "task": task, "metric": table.metric,
                                         "greater": table.greater, "applies": False}
            if candidate.family in table.families:
                cpu = time.process_time()
                result = evaluate_candidate(Trial(number, candidate.family, candidate.params),
                                            data, settings)
                # One thread, so CPU time is the work; wall time swells on a shared machine.
                record.update(applies=True, ok=result.ok,
                              cpu_seconds=round(time.process_time() - cpu, 3),
                              reused_seconds=round(result.reused_seconds, 3),
                              score=result.metrics.get(table.metric) if result.ok else None,
                              fit_seconds=round(result.fit_seconds, 3),
                              predict_seconds=round(result.predict_seconds, 3),
                              error=(result.error or "")[-300:] or None)
                score = record["score"]
                print(f"{table.name:<20} {candidate.family:<20} "
                      f"{score if score is None else f'{score:.4f}'} "
                      f"{result.fit_seconds:.1f}s", flush=True)
            out.write(json.dumps(record) + "\n")
            out.flush()
            done[(table.name, candidate.key)] = record


def _subsample(frame: pd.DataFrame, target: str, task: str, rows: int,
               seed: int) -> pd.DataFrame:
    """At most `rows` rows, stratified on the class when every class has two rows or more."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    y = frame[target]
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    kept, _ = train_test_split(frame, train_size=rows, stratify=stratify, random_state=seed)
    return kept.reset_index(drop=True)


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


# ---- 3. normalising and picking --------------------------------------------------------------


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


# ---- 4. writing ------------------------------------------------------------------------------


HEADER = """\
# The portfolio: the configurations a study tries first, in this order, before each family's own
# defaults and then the sampler. GENERATED by benchmarks/portfolio.py: do not edit by hand, rerun
#     .venv/bin/python -m benchmarks.portfolio --write
# (about {minutes:.0f} minutes of one core; scores are cached under /work/scratch/portfolio/).
# Picked greedily on the {tables} meta tables of shared/datasets/meta/ (never the benchmark
# tables) from {pool} candidates (each family's defaults, the former hand-written entries, points
# drawn from each space): each entry the one that most raises the mean over tables of the best
# normalised score so far (best candidate 1, median 0) per unit of cost to the power {power:g}
# (cost: a trial's CPU seconds over the table's median trial). Entry comments: where it came
# from, its mean normalised score, its mean CPU seconds on at most {rows:,} training rows.
# HistGradientBoosting's defaults are kept among the first two: a budget of two trials still
# returns a model at least as good as that baseline (tests/test_tasks/search/test_portfolio.py).
# Each entry names a family and the parameters that differ from its first default. A family the
# task or allowed_models rules out is skipped. Results: benchmarks/results/{results}.
"""


def changed(candidate: Candidate) -> Params:
    """The parameters that differ from the family's first default: what an entry spells out."""
    from tasks.search.spaces import load_space

    base = load_space(candidate.family).defaults[0]
    return {k: v for k, v in candidate.params.items() if base.get(k) != v}


def portfolio_yaml(chosen: list[Candidate], notes: list[str], header: str) -> str:
    lines = [header]
    for candidate, note in zip(chosen, notes, strict=True):
        params = changed(candidate)
        lines.append(f"- family: {candidate.family}  # {note}")
        if params:
            flow = yaml.safe_dump(params, default_flow_style=True, width=10_000, sort_keys=False)
            lines.append(f"  params: {flow.strip()}")
    return "\n".join(lines) + "\n"


def _figures_table(cv: dict[str, dict[str, list[float]]], full: dict[str, dict[str, float]],
                   halves: int) -> list[str]:
    lines = ["| figure | today, all tables | learned, all tables (in sample) "
             f"| today, left out ({halves} halves) | learned, left out | learned - today, "
             "left out |", "|---|---|---|---|---|---|"]
    for figure in cv["learned"]:
        t, lr = np.array(cv["today"][figure]), np.array(cv["learned"][figure])
        lines.append(f"| {figure} | {full['today'][figure]:.3f} | {full['learned'][figure]:.3f} "
                     f"| {t.mean():.3f} ± {t.std():.3f} | {lr.mean():.3f} ± {lr.std():.3f} "
                     f"| {(lr - t).mean():+.3f} (better in {(lr > t).sum()}, worse in "
                     f"{(lr < t).sum()} of {len(t)}) |")
    return lines


def _powers_table(cvs: dict[float, dict[str, dict[str, list[float]]]]) -> list[str]:
    powers = list(cvs)
    lines = ["| figure | " + " | ".join(f"cost power {p:g}" for p in powers) + " |",
             "|---|" + "---|" * len(powers)]
    for figure in cvs[powers[0]]["learned"]:
        cells = [np.mean(np.array(cv["learned"][figure]) - np.array(cv["today"][figure]))
                 for cv in cvs.values()]
        lines.append(f"| {figure} | " + " | ".join(f"{c:+.3f}" for c in cells) + " |")
    return lines


def results_markdown(scores: Scores, order: list[int],
                     cvs: dict[float, dict[str, dict[str, list[float]]]],
                     full: dict[str, dict[str, float]], setup: str, command: str) -> str:
    cv = cvs[COST_POWER]
    norm, cost, applies = scores.norm, scores.cost, scores.applies
    so_far = np.zeros(norm.shape[1])
    rows = ["| # | family | origin | params (besides the family's first default) | mean "
            "normalised score | mean fit s | mean CPU s | mean cost | tables | best so far |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for position, i in enumerate(order, 1):
        so_far = np.maximum(so_far, np.where(applies[i], norm[i], 0.0))
        c, mine = scores.pool[i], applies[i]
        params = json.dumps(changed(c)).replace("|", "/") if changed(c) else "(defaults)"
        rows.append(f"| {position} | {c.family} | {c.origin} | `{params}` "
                    f"| {norm[i, mine].mean():.3f} | {scores.fits[i, mine].mean():.2f} "
                    f"| {scores.seconds[i, mine].mean():.2f} | {cost[i, mine].mean():.2f} "
                    f"| {mine.sum()} | {so_far.mean():.3f} |")
    halves = len(next(iter(cv["learned"].values())))
    return "\n".join([
        "# A learned portfolio (search_spaces/portfolio.yaml)", "",
        "Generated by `benchmarks/portfolio.py`; rerun with", "", f"    {command}", "",
        setup, "", "## The entries, in order", "", *rows, "",
        "Mean normalised score: over the tables the family applies to (1 = the best of the "
        "pool on that table, 0 = the pool's median or worse, failures 0). Mean fit s: the "
        "trial's fit_seconds as a run reports it (wall time, featurizing included); CPU s: "
        "its CPU time; cost: trial seconds plus overhead over the table's median trial, what "
        "the choice divides by. Best so far: the mean over all tables of the best normalised "
        "score among the entries up to this one.", "",
        "## Leave tables out: does the choice carry over?", "",
        "The list is picked on half the tables (halved within binary, multiclass, regression) "
        "and scored on the other half, each split both ways; today's hand-written list is "
        "scored on the same halves. Figures: the mean over the left-out tables of the best "
        "normalised score after the first k entries that apply to the table, or within a "
        "budget of cost (in the table's median trials).", "",
        *_figures_table(cv, full, halves), "",
        "## How much the cost counts", "",
        f"The choice divides an entry's gain by its mean cost to a power ({COST_POWER:g} above):"
        " 0 picks by gain per trial, 1 by gain per unit of time. Learned minus hand-written, "
        "left out, on the same halves:", "",
        *_powers_table(cvs), "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6, help="points drawn per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=5_000, help="training rows per table")
    parser.add_argument("--fit-seconds", type=float, default=20.0,
                        help="the boosting clock of one fit (TrialSettings.fit_seconds)")
    parser.add_argument("--entries", type=int, default=14, help="length of the portfolio")
    parser.add_argument("--repeats", type=int, default=25, help="random halvings of the tables")
    parser.add_argument("--tables", help="comma-separated meta tables (default: all)")
    parser.add_argument("--cache", type=Path, help="JSON lines of finished (candidate, table)")
    parser.add_argument("--write", action="store_true",
                        help="rewrite search_spaces/portfolio.yaml and the results file")
    parser.add_argument("--note", default="", help="a paragraph added to the results file")
    parser.add_argument("--results", type=Path,
                        default=ROOT / "benchmarks" / "results" / "2026-12-06-portfolio.md")
    args = parser.parse_args()
    logging.getLogger("automl").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")  # convergence chatter; failures are records
    manifest = json.loads((META / "manifest.json").read_text())
    if args.tables:
        wanted = args.tables.split(",")
        unknown = sorted(set(wanted) - {e["name"] for e in manifest})
        if unknown:
            parser.error(f"unknown tables {unknown}; the manifest has: "
                         f"{', '.join(e['name'] for e in manifest)}")
        manifest = [e for e in manifest if e["name"] in wanted]
    cache = args.cache or CACHE / (f"scores-rows{args.max_rows}-fit{args.fit_seconds:g}"
                                   f"-seed{args.seed}.jsonl")
    pool = candidate_pool(args.samples, args.seed)
    print(f"{len(pool)} candidates on {len(manifest)} tables; cache {cache}", flush=True)
    started = time.process_time()
    records = evaluate(pool, manifest, cache, max_rows=args.max_rows,
                       fit_seconds=args.fit_seconds, seed=args.seed)
    print(f"evaluated in {time.process_time() - started:.0f} s of CPU", flush=True)

    scores = matrices(pool, records)
    norm, cost = scores.norm, scores.cost
    keys = [c.key for c in pool]
    forced = keys.index(Candidate(BASELINE, _first_default(BASELINE), "default").key)
    order = greedy(norm, cost, args.entries, forced=forced)
    today = [keys.index(c.key) for c in hand_written()]
    # Up to the hand-written list's length; budgets in the table's median trials.
    trials, budgets = (1, 2, 3, 5, 8, len(today)), (1.0, 2.0, 5.0, 10.0, 20.0)
    tasks = {e["name"]: e["task"] for e in manifest}
    cvs = {power: leave_tables_out(norm, cost, [tasks[t] for t in scores.tables], today,
                                   size=args.entries, forced=forced, repeats=args.repeats,
                                   seed=args.seed, trials=trials, budgets=budgets, power=power)
           for power in sorted({0.0, COST_POWER, 1.0})}
    full = {name: anytime(o, norm, cost, trials, budgets)
            for name, o in (("learned", order), ("today", today))}
    minutes = float(scores.seconds.sum()) / 60
    # The clock is wall time, as in a run: on a busy machine it cuts fits shorter.
    clocked = int((scores.fits >= 0.95 * args.fit_seconds).sum())
    setup = (f"{len(pool)} candidates ({args.samples} drawn per family, seed {args.seed}) on "
             f"{len(scores.tables)} meta tables; each a trial as a run makes it: the default "
             f"metric (AUC_weighted, normalized_root_mean_squared_error), early stopping and a "
             f"{args.fit_seconds:g} s boosting clock, one thread, on a seeded 75/25 holdout of "
             f"at most {args.max_rows:,} training rows. {minutes:.0f} minutes of CPU in trials; "
             f"{clocked} of {int(scores.applies.sum())} trials ran into the boosting clock. "
             f"Costs count {OVERHEAD_SECONDS} s of overhead per trial. HistGradientBoosting's "
             f"defaults alone: mean normalised score {np.nanmean(norm[forced]):.3f}.")
    command = (f".venv/bin/python -m benchmarks.portfolio --samples {args.samples} --seed "
               f"{args.seed} --max-rows {args.max_rows} --fit-seconds {args.fit_seconds:g} "
               f"--entries {args.entries} --repeats {args.repeats} --write")
    text = results_markdown(scores, order, cvs, full, f"{setup} {args.note}".strip(), command)
    print(text)
    if args.write:
        _write(scores, order, minutes, args.max_rows, args.results)
        args.results.write_text(text)


def _first_default(family: str) -> Params:
    from tasks.search.spaces import load_space

    return dict(load_space(family).defaults[0])


def _write(scores: Scores, order: list[int], minutes: float, rows: int, results: Path) -> None:
    """search_spaces/portfolio.yaml, checked to read back as exactly the chosen points."""
    from tasks.search.portfolio import parse_portfolio

    chosen = [scores.pool[i] for i in order]
    norm, mine = scores.norm, scores.applies
    notes = [f"{scores.pool[i].origin}; normalised {norm[i, mine[i]].mean():.2f}, "
             f"{scores.seconds[i, mine[i]].mean():.1f} s" for i in order]
    header = HEADER.format(minutes=minutes, tables=len(scores.tables), pool=len(scores.pool),
                           results=results.name, rows=rows, power=COST_POWER)
    text = portfolio_yaml(chosen, notes, header)
    back = parse_portfolio(yaml.safe_load(text))
    if [(f, dict(p)) for f, p in back] != [(c.family, c.params) for c in chosen]:
        raise RuntimeError("the portfolio written does not read back as the chosen points")
    (ROOT / "search_spaces" / "portfolio.yaml").write_text(text)


if __name__ == "__main__":
    main()
