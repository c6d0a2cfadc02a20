"""Leaves per tree for the forests (tasks.models.pipeline.MAX_LEAVES), learned on the meta tables
only: random forest and extra trees with the search space's 200 trees and first defaults, at each
leaf cap, on a seeded 80/20 split of every meta table in a row range.

    .venv/bin/python benchmarks/forest_leaves.py [--min-rows 5000] [--caps none,8000,2000]

Prints one row per table, family and cap: the test score (ROC AUC for binary tables, log loss
for multiclass, RMSE for regression), fit seconds on 2 threads and the pickled size.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
FORESTS = {"classification": {"extra_trees": ExtraTreesClassifier,
                              "random_forest": RandomForestClassifier},
           "regression": {"extra_trees": ExtraTreesRegressor,
                          "random_forest": RandomForestRegressor}}


def table(entry: dict) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(META / entry.get("path", f"{entry['name']}.parquet"))
    y = frame.pop(entry["target"])
    text = [c for c in frame if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:  # the forests' own preprocessing: category codes
        codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                               encoded_missing_value=-2)
        frame[text] = codes.fit_transform(frame[text].astype(str))
    if entry["task"] != "regression":
        y = pd.Series(pd.factorize(y)[0])
    return frame.astype("float32").fillna(-999), y


def score(task: str, model, X: pd.DataFrame, y: pd.Series) -> float:
    if task == "binary":
        return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    if task == "multiclass":
        return float(log_loss(y, np.clip(model.predict_proba(X), 1e-15, 1), labels=model.classes_))
    return float(mean_squared_error(y, model.predict(X)) ** 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-rows", type=int, default=5000)
    parser.add_argument("--max-rows", type=int, default=10**9)
    parser.add_argument("--caps", default="none,8000,2000")
    args = parser.parse_args()
    caps = [None if c == "none" else int(c) for c in args.caps.split(",")]
    manifest = json.loads((META / "manifest.json").read_text())
    entries = manifest if isinstance(manifest, list) else manifest["datasets"]
    print("| table | rows | family | leaves | score | fit s | MB |")
    print("|---|---|---|---|---|---|---|")
    for entry in entries:
        if not args.min_rows <= entry["rows"] < args.max_rows:
            continue
        X, y = table(entry)
        task = entry["task"]
        kind = "regression" if task == "regression" else "classification"
        parts = train_test_split(X, y, test_size=0.2, random_state=0,
                                 stratify=None if kind == "regression" else y)
        X_train, X_test, y_train, y_test = parts
        for family, cls in FORESTS[kind].items():
            for cap in caps:
                started = time.perf_counter()
                model = cls(n_estimators=200, max_features="sqrt" if kind != "regression" else 1.0,
                            max_leaf_nodes=cap, n_jobs=2, random_state=0).fit(X_train, y_train)
                seconds = time.perf_counter() - started
                print(f"| {entry['name']} | {entry['rows']} | {family} | {cap or 'no cap'} | "
                      f"{score(task, model, X_test, y_test):.5g} | {seconds:.1f} | "
                      f"{len(pickle.dumps(model)) / 1e6:.0f} |", flush=True)


if __name__ == "__main__":
    main()
