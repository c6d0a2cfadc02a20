"""Does a configuration's score on a subsample of the fit rows rank it as its score on all of
them does? Evidence for successive halving by rows (issue 17), measured on the largest meta
tables only (benchmarks/results/2026-12-07-screening.md).

For each table: a 10% holdout (the search's split for a large table), the portfolio's first
`--configs` configurations, each fitted on a sixteenth, a quarter and all of the fit rows (one
thread, as a trial) and scored on the validation rows with the primary metric. Then the search's
rule is replayed in portfolio order: from the sixth configuration on, one whose score on a
subsample is worse than the median of the configurations that reached all rows there stops.

    .venv/bin/python benchmarks/screening.py [--configs 16] [--min-rows 40000]

Reports per table: Spearman's rank correlation of each subsample's scores with the full scores,
the fitting seconds the rule spends against fitting every configuration on all rows, and the
best full score among the configurations the rule lets through against the best of all
(normalised: 0 = the same best, 1 = as far as the worst configuration).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from optuna.storages import InMemoryStorage
from scipy.stats import spearmanr
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.search.evaluate import evaluate_candidate
from tasks.search.head_start import trial_settings
from tasks.search.sampling import ask_candidate, first_points
from tasks.search.state import PRUNE_STARTUP
from tasks.search.study import open_study

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
METRIC = {"binary": "AUC_weighted", "multiclass": "log_loss",
          "regression": "normalized_root_mean_squared_error"}


def subsample(y: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """Positions of `rows` of the fit rows, stratified by class where every class has two."""
    _, counts = np.unique(y, return_counts=True)
    stratify = y if y.dtype.kind not in "fc" and counts.min() >= 2 else None
    chosen, _ = train_test_split(np.arange(len(y)), train_size=rows, random_state=seed,
                                 stratify=stratify)
    return np.sort(chosen)


def measure(entry: dict, n_configs: int) -> list[dict]:
    path = META / entry.get("path", f"{entry['name']}.parquet")
    config = parse_config(training_data=str(path), target=entry["target"],
                          task="regression" if entry["task"] == "regression" else "classification",
                          primary_metric=METRIC[entry["task"]], validation_size=0.1,
                          max_concurrent_iterations=1, max_cores_per_iteration=1)
    frame = pd.read_parquet(path)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = trial_settings(config, profile, data)
    study = open_study(name="screening", workdir=Path("."), storage=InMemoryStorage(),
                       maximize=profile.metric.greater_is_better, seed=0)
    families = list(profile.families)
    queue = first_points(study, families)
    fit, valid = data.folds[0]
    rungs = [len(fit) // 16, len(fit) // 4]
    rows = []
    for _ in range(n_configs):
        trial, candidate = ask_candidate(study, families, queue)
        study.tell(trial, 0.0)
        steps = []
        for k in [*rungs, None]:
            part = data if k is None else replace(
                data, folds=((fit[subsample(data.y[fit], k, settings.seed)], valid),))
            result = evaluate_candidate(candidate, part, settings)
            score = result.metrics.get(profile.metric.name) if result.ok else np.nan
            steps.append((score, result.fit_seconds + result.predict_seconds))
        rows.append({"table": entry["name"], "config": candidate.label,
                     "scores": [s for s, _ in steps], "seconds": [t for _, t in steps]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def replay(rows: list[dict], greater: bool) -> dict:
    """The search's rule in portfolio order (tasks.search.state.prune_bars)."""
    sign = 1.0 if greater else -1.0
    finished: list[list[float]] = []
    spent = 0.0
    kept = []
    for row in rows:
        scores, seconds = row["scores"], row["seconds"]
        if any(np.isnan(scores)):
            spent += sum(seconds)
            continue
        stopped = False
        for step in range(len(scores) - 1):
            spent += seconds[step]
            if len(finished) >= PRUNE_STARTUP:
                bar = statistics.median(np.mean(f[: step + 1]) for f in finished)
                if sign * np.mean(scores[: step + 1]) < sign * bar:
                    stopped = True
                    break
        if not stopped:
            spent += seconds[-1]
            finished.append(scores)
            kept.append(scores[-1])
    full = [r["scores"][-1] for r in rows if not np.isnan(r["scores"][-1])]
    best, worst = (max(full), min(full)) if greater else (min(full), max(full))
    found = max(kept) if greater else min(kept)
    return {"spent": spent / sum(r["seconds"][-1] for r in rows),
            "regret": abs(best - found) / abs(best - worst) if best != worst else 0.0,
            "reached": len(kept)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--min-rows", type=int, default=40_000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    entries = [e for e in json.loads((META / "manifest.json").read_text())
               if e.get("rows", 0) >= args.min_rows]
    lines = ["| table | rows | configs | Spearman 1/16 | Spearman 1/4 | fitting spent | "
             "reached all rows | regret |", "|---|---|---|---|---|---|---|---|"]
    for entry in entries:
        rows = measure(entry, args.configs)
        ok = [r for r in rows if not any(np.isnan(r["scores"]))]
        full = [r["scores"][-1] for r in ok]
        rho = [spearmanr([r["scores"][i] for r in ok], full).statistic for i in (0, 1)]
        result = replay(rows, entry["task"] == "binary")
        lines.append(f"| {entry['name']} | {entry['rows']:,} | {len(rows)} | {rho[0]:.2f} | "
                     f"{rho[1]:.2f} | {result['spent']:.0%} | {result['reached']} | "
                     f"{result['regret']:.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
