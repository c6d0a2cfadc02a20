"""Every model family of the task, on every shared dataset, with its first default configuration:
a Markdown table of the primary metric (AUC_weighted, normalized_root_mean_squared_error), or why
a family was skipped or failed. Uses the project's own steps: guardrails, a 3-fold split, the
size screen, and the same trial evaluation as a search.

    .venv/bin/python benchmarks/families.py [--datasets adult,titanic] [--max-rows 5000]
        [--families catboost,lightgbm] [--meta]

With --meta, the tables of shared/datasets/meta/ (where defaults may be chosen). Boosting stops
early as in a search (on AUC for binary data, else on the model's own loss).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.config import parse_config
from tasks.metrics import early_stopping_watch, get_metric
from tasks.errors import AutoMLError
from tasks.models.families import FAMILIES, resolve_families, screen_families
from tasks.features.preprocess import build_preprocessor
from tasks.data.inspect import inspect_data
from tasks.search.spaces import load_space
from tasks.data.split import SplitPlan, split_data
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate

if TYPE_CHECKING:
    from collections.abc import Callable

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TASKS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
METRICS = {"classification": "AUC_weighted", "regression": "normalized_root_mean_squared_error"}


@dataclass(frozen=True)
class Row:
    dataset: str
    task: str
    shape: str  # rows x encoded features, as screened
    cells: dict[str, str]  # family key -> the cell text
    seconds: float
    note: str = ""  # why the dataset was not run at all


def subsample(frame: pd.DataFrame, target: str, task: str, max_rows: int) -> pd.DataFrame:
    """At most max_rows rows, stratified on the class when every class has two rows or more."""
    if max_rows <= 0 or len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    y = frame[target]
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    rows, _ = train_test_split(frame, train_size=max_rows, stratify=stratify, random_state=0)
    return rows.reset_index(drop=True)


def read_manifest(folder: Path, wanted: str | None, error: Callable[[str], NoReturn],
                  noun: str = "datasets") -> list[dict[str, str]]:
    """The manifest's entries in its order, or those of the comma-separated `wanted` names; an
    unknown name goes to `error` (argparse's parser.error) with the names the manifest has."""
    manifest: list[dict[str, str]] = json.loads((folder / "manifest.json").read_text())
    if wanted:
        names = wanted.split(",")
        unknown = sorted(set(names) - {e["name"] for e in manifest})
        if unknown:
            error(f"unknown {noun} {unknown}; the manifest has: "
                  f"{', '.join(e['name'] for e in manifest)}")
        manifest = [e for e in manifest if e["name"] in names]
    return manifest


def run_dataset(entry: dict, max_rows: int, n_jobs: int, folder: Path = SHARED,
                families: list[str] | None = None) -> Row:
    started = time.perf_counter()
    task = TASKS[entry["task"]]
    frame = subsample(pd.read_parquet(folder / entry["file"]), entry["target"], task, max_rows)
    # Three folds, fewer when a class is rarer (hypothyroid has a class of 2 rows).
    rarest = frame[entry["target"]].value_counts().min() if task == "classification" else 3
    config = parse_config(
        training_data=str(folder / entry["file"]), target=entry["target"], task=task,
        n_cross_validations=max(2, min(3, int(rarest))), random_state=0,
    )
    keys = resolve_families(task, families)
    try:
        profile = inspect_data(config, frame)
    except AutoMLError as exc:
        refused = dict.fromkeys(keys, "refused (see below)")
        return Row(entry["name"], entry["task"], f"{len(frame):,} x ?", refused, 0.0, str(exc))
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    # The width the scaled families (KNN) see: one-hot levels, dates and text expanded.
    width = build_preprocessor(profile.roles, scaling="standard", task=task).fit_transform(
        data.X, data.y
    ).shape[1]
    kept, skipped = screen_families(keys, n_rows=len(frame), n_features=width)
    cells = {k: f"skipped: {reason.partition('skipped: ')[2]}" for k, reason in skipped.items()}
    n_classes = None if data.classes is None else len(data.classes)
    watch = early_stopping_watch(get_metric(METRICS[task], task), n_classes)
    settings = TrialSettings(profile.roles, seed=0, n_jobs=n_jobs, early_stopping=watch)
    for number, key in enumerate(kept):
        candidate = Candidate(number, key, dict(load_space(key).defaults[0]))
        result = evaluate_candidate(candidate, data, settings)
        if result.ok:
            seconds = result.fit_seconds + result.predict_seconds
            cells[key] = f"{result.metrics[METRICS[task]]:.4f} ({seconds:.1f} s)"
        else:
            cells[key] = f"FAILED: {(result.error or '').splitlines()[-1][:120]}"
        print(f"  {entry['name']:<20} {FAMILIES[key].name:<22} {cells[key]}", file=sys.stderr)
    seconds = time.perf_counter() - started
    return Row(entry["name"], entry["task"], f"{len(frame):,} x {width}", cells, seconds)


def markdown(rows: list[Row], task: str) -> str:
    keys = [k for k in FAMILIES
            if task in FAMILIES[k].estimators and any(k in r.cells for r in rows)]
    head = ["dataset", "rows x features", *(FAMILIES[k].name for k in keys), "wall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.cells.get(k, "").replace("|", "/") for k in keys]
        lines.append(
            f"| {row.dataset} ({row.task}) | {row.shape} | " + " | ".join(cells)
            + f" | {row.seconds:.0f} s |"
        )
    lines += [f"\n{row.dataset}: refused by the guardrails: {row.note}" for row in rows if row.note]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", help="comma-separated names from the manifest (default: all)")
    parser.add_argument("--max-rows", type=int, default=5000,
                        help="stratified subsample of at most this many rows (0: all rows)")
    parser.add_argument("--n-jobs", type=int, default=2, help="threads per trial")
    parser.add_argument("--families", help="comma-separated family names (default: all)")
    parser.add_argument("--meta", action="store_true", help="the tables of shared/datasets/meta/")
    args = parser.parse_args()

    folder = SHARED / "meta" if args.meta else SHARED
    families = args.families.split(",") if args.families else None
    manifest = read_manifest(folder, args.datasets, parser.error)
    logging.getLogger("automl").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")  # convergence chatter; failures show up in the table
    started = time.perf_counter()
    rows = [run_dataset(entry, args.max_rows, args.n_jobs, folder, families) for entry in manifest]
    print(f"First default configuration of every family, 3-fold CV, seed 0, {args.n_jobs} threads, "
          f"at most {args.max_rows:,} rows (stratified), screened on the rows used. Cells: primary "
          f"metric (fit + predict seconds over the folds).\n")
    for task, metric in METRICS.items():
        chosen = [r for r in rows if TASKS[r.task] == task]
        if chosen:
            print(f"### {task}: {metric}\n\n{markdown(chosen, task)}\n")
    print(f"Total wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
