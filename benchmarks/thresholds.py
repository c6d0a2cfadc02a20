"""Does a decision threshold tuned on out-of-fold probabilities raise the held-out metric of the
model refit on all rows? The figures behind tasks.final.thresholds.MIN_GAIN and WINDOW, from the
binary tables of shared/datasets/meta/ (never the benchmark tables).

For each table and seed: a seeded, stratified 80/20 split; on the 80%, the run's own validation
(CV or holdout) with each family's first default; for each label metric, the threshold searched
on its validation probabilities (for each smoothing window); the refit model's metric on the 20%
at the most likely class and at the threshold. The summary counts, for each minimum validation
gain, how often the threshold was kept and what it did to the held-out metric.

    .venv/bin/python benchmarks/thresholds.py [--datasets resume_callback,spam7]
        [--families lightgbm,xgboost,catboost] [--seeds 0,1] [--windows 1,5,9]
        [--metrics accuracy,balanced_accuracy,f1_score_macro,f1_score_binary]
        [--out rows.jsonl]
    .venv/bin/python benchmarks/thresholds.py --summary rows.jsonl  # the summary of a past run
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.final.choice import Choice
from tasks.final.refit import refit_model
from tasks.final.thresholds import search_threshold
from tasks.metrics import METRICS, early_stopping_watch
from tasks.models.predict import predict_scores
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
MIN_GAINS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.03)
BANDS = (0.0, 0.002, 0.005, 0.01, 0.02, np.inf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", help="binary meta tables (default: all of them)")
    parser.add_argument("--families", default="lightgbm,xgboost,catboost")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--windows", default="1,5,9")
    parser.add_argument("--metrics",
                        default="accuracy,balanced_accuracy,f1_score_macro,f1_score_binary")
    parser.add_argument("--out", help="also write every row as JSON lines here")
    parser.add_argument("--summary", help="only summarise the rows of an earlier --out file")
    args = parser.parse_args()
    if args.summary:
        _summary(pd.read_json(args.summary, lines=True))
        return
    warnings.simplefilter("ignore")
    manifest = {e["name"]: e for e in json.loads((META / "manifest.json").read_text())}
    names = (args.datasets.split(",") if args.datasets
             else [n for n, e in manifest.items() if e["task"] == "binary"])
    windows = [int(w) for w in args.windows.split(",")]
    metrics = args.metrics.split(",")
    print("| dataset | seed | family | metric | window | threshold | validation gain | "
          "held-out gain |")
    print("|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, object]] = []
    for name in names:
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in _table(manifest[name], seed, args.families.split(","), metrics, windows):
                rows.append(row)
                print(f"| {name} | {seed} | {row['family']} | {row['metric']} | "
                      f"{row['window']} | {row['threshold']:.3f} | {row['valid_gain']:+.4f} | "
                      f"{row['held_gain']:+.4f} |", flush=True)
                if args.out:
                    with open(args.out, "a") as handle:
                        handle.write(json.dumps({"dataset": name, "seed": seed, **row}) + "\n")
    _summary(pd.DataFrame(rows))


def _table(
    entry: dict[str, str], seed: int, families: list[str], metrics: list[str], windows: list[int]
) -> list[dict[str, object]]:
    frame = pd.read_parquet(META / entry["file"])
    target = entry["target"]
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=frame[target])
    # Any label metric: none of them is watched by early stopping.
    config = parse_config(training_data=entry["name"], target=target, task="classification",
                          primary_metric="balanced_accuracy", random_state=seed)
    train = train.reset_index(drop=True)
    profile = inspect_data(config, train)
    data, _ = split_data(SplitPlan.of(config), profile, train)
    assert data.classes is not None
    settings = TrialSettings(profile.roles, seed=seed, n_jobs=1, metric=profile.metric.name,
                             early_stopping=early_stopping_watch(profile.metric, 2))
    y_test = np.searchsorted(data.classes, test[target].to_numpy())
    y_valid = data.y_valid
    out: list[dict[str, object]] = []
    for family in families:
        candidate = Candidate(0, family, dict(load_space(family).defaults[0]))
        result = evaluate_candidate(candidate, data, settings)
        if not result.ok or result.predictions is None:
            continue
        model = refit_model(Choice((result,), (1.0,), result.metrics), data, settings)
        proba = predict_scores(model, test.drop(columns=target), data.classes)
        for name in metrics:
            metric = METRICS[name]
            before = metric(y_valid, result.predictions, None, 1.0, data.positive)
            held_before = metric(y_test, proba, None, 1.0, data.positive)
            for window in windows:
                t, after = search_threshold(result.predictions, y_valid, metric, None,
                                            data.positive, window)
                held_after = metric(y_test, proba, None, 1.0, data.positive, t)
                out.append({"family": family, "metric": name, "window": window, "threshold": t,
                            "valid_gain": after - before, "held_gain": held_after - held_before})
    return out


def _summary(rows: pd.DataFrame) -> None:
    """For each window and minimum gain: the thresholds kept, how their held-out gain went, and
    the mean held-out gain over all fits of keeping them (0 where not kept)."""
    print("\n| window | min gain | kept | held out better / worse / same | mean held-out gain "
          "when kept | mean over all fits |")
    print("|---|---|---|---|---|---|")
    for window, group in rows.groupby("window"):
        for floor in MIN_GAINS:
            kept = group[group["valid_gain"] >= max(floor, 1e-12)]
            held = kept["held_gain"]
            print(f"| {window} | {floor} | {len(kept)} of {len(group)} | "
                  f"{(held > 0).sum()} / {(held < 0).sum()} / {(held == 0).sum()} | "
                  f"{held.mean() if len(held) else 0:+.4f} | "
                  f"{held.sum() / len(group):+.4f} |")
    print("\nBy validation gain (band): fits, held out better / worse / same, mean held-out gain")
    print("| window | " + " | ".join(f"[{a}, {b})" for a, b in pairwise(BANDS)) + " |")
    print("|---|" + "---|" * (len(BANDS) - 1))
    for window, group in rows.groupby("window"):
        cells = []
        for low, high in pairwise(BANDS):
            band = group[(group["valid_gain"] >= max(low, 1e-12)) & (group["valid_gain"] < high)]
            held = band["held_gain"]
            cells.append(f"{len(band)}: {(held > 0).sum()} / {(held < 0).sum()} / "
                         f"{(held == 0).sum()}, {held.mean() if len(held) else 0:+.4f}")
        print(f"| {window} | " + " | ".join(cells) + " |")
    by_metric: dict[str, list[str]] = defaultdict(list)
    for (window, name), group in rows.groupby(["window", "metric"]):
        for floor in MIN_GAINS:
            kept = group[group["valid_gain"] >= max(floor, 1e-12)]["held_gain"]
            by_metric[f"{name}, window {window}"].append(
                f"{len(kept)}: {(kept > 0).sum()}/{(kept < 0).sum()}, "
                f"{kept.sum() / len(group):+.4f}")
    print("\nBy metric: for each minimum gain, kept: held-out better/worse, mean over all fits")
    print("| metric, window | " + " | ".join(str(f) for f in MIN_GAINS) + " |")
    print("|---|" + "---|" * len(MIN_GAINS))
    for key, cells in by_metric.items():
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
