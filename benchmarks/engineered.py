"""Does a booster gain from features engineered inside its pipeline (tasks.features.engineered:
golden features, crosses of category codes, out-of-fold target encodings)? The figures behind
the engineered_features option of search_spaces/lightgbm.yaml and catboost.yaml, from the
tables of shared/datasets/meta/ (never the benchmark tables).

For each table (at most --max-rows rows, stratified): 3-fold CV as benchmarks/families.py runs
it, each family's first default configuration evaluated as a trial is (tasks.search.evaluate),
with and without engineered_features, stopping early on a slice of each fold's fit rows
(boosting.STOP_SHARE). One thread. Reported: the primary metric (AUC_weighted, or
normalized_root_mean_squared_error), log loss for classification, fit seconds; per family and
kind of task, the wins and losses of the engineered variant and the mean change.

    .venv/bin/python benchmarks/engineered.py [--datasets spam7,chile_vote] [--max-rows 5000]
            [--families lightgbm,catboost] [--seeds 0,1,2] [--jsonl FILE]

Per-table changes swing by hundredths of AUC from one seed to the next (early stopping watches
a few hundred rows): compare over several seeds; pairs are (table, seed).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import warnings
from pathlib import Path

import pandas as pd
from families import METRICS, TASKS, subsample
from threadpoolctl import threadpool_limits

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import AutoMLError
from tasks.metrics import METRICS as ALL_METRICS
from tasks.metrics import early_stopping_watch, get_metric
from tasks.models.boosting import STOP_SHARE
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
TIE = 1e-4  # a change smaller than this counts as neither a win nor a loss


def run_table(entry: dict, families: list[str], max_rows: int, seed: int) -> list[dict]:
    """Each family's first default on one table, without and with engineered features."""
    task = TASKS[entry["task"]]
    frame = subsample(pd.read_parquet(META / entry["file"]), entry["target"], task, max_rows)
    rarest = frame[entry["target"]].value_counts().min() if task == "classification" else 3
    config = parse_config(training_data=str(META / entry["file"]), target=entry["target"],
                          task=task, n_cross_validations=max(2, min(3, int(rarest))),
                          random_state=seed)
    try:
        profile = inspect_data(config, frame)
    except AutoMLError as exc:
        print(f"  {entry['name']}: refused: {exc}", file=sys.stderr)
        return []
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    n_classes = None if data.classes is None else len(data.classes)
    metric = METRICS[task]
    settings = TrialSettings(profile.roles, seed=seed, n_jobs=1, stop_share=STOP_SHARE,
                             early_stopping=early_stopping_watch(get_metric(metric, task),
                                                                 n_classes))
    rows = []
    for family in families:
        for engineered in (False, True):
            params = {**load_space(family).defaults[0], "engineered_features": engineered}
            result = evaluate_candidate(Candidate(0, family, params), data, settings)
            row = {"dataset": entry["name"], "kind": entry["task"], "family": family,
                   "seed": seed, "engineered": engineered, "rows": len(frame), "ok": result.ok,
                   "error": result.error, "seconds": result.fit_seconds + result.predict_seconds,
                   "metric": metric, "score": result.metrics.get(metric),
                   "log_loss": result.metrics.get("log_loss")}
            rows.append(row)
            print(f"  {entry['name']:<20} {family:<9} seed {seed} {'on ' if engineered else 'off'} "
                  f"{row['score'] if row['ok'] else row['error']} ({row['seconds']:.1f} s)",
                  file=sys.stderr)
    return rows


def summary(rows: list[dict]) -> str:
    """Per family and kind of task: engineered on against off, paired by table and seed."""
    pairs: dict[tuple[str, str], list[tuple[dict, dict]]] = {}
    by_key = {(r["dataset"], r["family"], r["seed"], r["engineered"]): r for r in rows}
    for (dataset, family, seed, engineered), on in by_key.items():
        off = by_key.get((dataset, family, seed, False))
        if engineered and off and on["ok"] and off["ok"]:
            pairs.setdefault((family, on["kind"]), []).append((off, on))
    lines = ["| family | task | pairs | wins / losses / ties | mean change of the metric "
             "(better +) | median | mean change of log loss (better +) | fit seconds off -> on |",
             "|---|---|---|---|---|---|---|---|"]
    for (family, kind), found in sorted(pairs.items()):
        sign = 1.0 if ALL_METRICS[found[0][0]["metric"]].greater_is_better else -1.0
        gains = [sign * (on["score"] - off["score"]) for off, on in found]
        losses = [off["log_loss"] - on["log_loss"] for off, on in found
                  if off["log_loss"] is not None and on["log_loss"] is not None]
        won = sum(g > TIE for g in gains)
        lost = sum(g < -TIE for g in gains)
        seconds = (sum(off["seconds"] for off, _ in found), sum(on["seconds"] for _, on in found))
        loss_text = f"{statistics.mean(losses):+.4f}" if losses else "-"
        lines.append(
            f"| {family} | {kind} ({found[0][0]['metric']}) | {len(found)} | "
            f"{won} / {lost} / {len(found) - won - lost} | {statistics.mean(gains):+.4f} | "
            f"{statistics.median(gains):+.4f} | {loss_text} | "
            f"{seconds[0]:.0f} -> {seconds[1]:.0f} ({seconds[1] / seconds[0]:.1f}x) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", help="comma-separated names from the meta manifest")
    parser.add_argument("--families", default="lightgbm,catboost")
    parser.add_argument("--max-rows", type=int, default=5000)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--jsonl", help="append each result to this file; tables already in it "
                                        "are read back, not run again")
    args = parser.parse_args()
    manifest = json.loads((META / "manifest.json").read_text())
    if args.datasets:
        wanted = set(args.datasets.split(","))
        manifest = [e for e in manifest if e["name"] in wanted]
    families = args.families.split(",")
    logging.getLogger("automl").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    done: list[dict] = []
    if args.jsonl and Path(args.jsonl).exists():
        done = [json.loads(line) for line in Path(args.jsonl).read_text().splitlines() if line]
    rows = list(done)
    for seed, entry in ((int(s), e) for s in args.seeds.split(",") for e in manifest):
        if any(r["dataset"] == entry["name"] and r["seed"] == seed for r in done):
            continue
        with threadpool_limits(limits=1):
            found = run_table(entry, families, args.max_rows, seed)
        rows += found
        if args.jsonl:
            with Path(args.jsonl).open("a") as out:
                out.writelines(json.dumps(r) + "\n" for r in found)
    print(summary(rows))


if __name__ == "__main__":
    main()
