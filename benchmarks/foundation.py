"""The foundation issue's figures: automl-flow against scikit-learn's HistGradientBoosting with
default settings on the same validation folds, and where the wall time of `automl train` goes.

    .venv/bin/python benchmarks/foundation.py [--data PATH --target COL --iterations N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.ensemble import HistGradientBoostingClassifier

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.storage import read_table
from tasks.metrics import get_metric
from tasks.data.split import SplitPlan, split_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def baseline_score(data_path: str, target: str, seed: int) -> float:
    """HGB defaults on exactly the folds automl-flow uses, out-of-fold AUC_weighted."""
    config = parse_config(training_data=data_path, target=target, random_state=seed)
    frame = read_table(data_path)
    data, _ = split_data(SplitPlan.of(config), inspect_data(config, frame), frame)
    X = data.X.copy()
    for column in X.columns:  # HGB's native categorical support needs the category dtype
        if not pd.api.types.is_numeric_dtype(X[column]):
            X[column] = X[column].astype("category")
    parts = []
    for fit_rows, valid_rows in data.folds:
        model = HistGradientBoostingClassifier(random_state=seed).fit(X.iloc[fit_rows], data.y[fit_rows])
        parts.append(model.predict_proba(X.iloc[valid_rows]))
    metric = get_metric("AUC_weighted", "classification")
    return metric(data.y_valid, np.concatenate(parts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(SHARED / "credit_g.parquet"))
    parser.add_argument("--target", default="class")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import flows.automl, mlflow.sklearn"], check=True)
    import_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "train", "--data", args.data, "--target", args.target,
             "--iterations", str(args.iterations), "--seed", str(args.seed), "--json"],
            capture_output=True, text=True, cwd=work, check=True,
        )
        total = time.perf_counter() - started
        result = json.loads(done.stdout)
        client = MlflowClient(result["tracking_uri"])
        children = client.search_runs(
            [client.get_run(result["run_id"]).info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{result['run_id']}'",
        )
        fitting = sum(r.data.metrics.get("fit_seconds", 0) + r.data.metrics.get("predict_seconds", 0)
                      for r in children)

    base = baseline_score(args.data, args.target, args.seed)
    ours = result["metrics"]["AUC_weighted"]
    print(f"| {Path(args.data).stem} | automl-flow ({result['best_model']}) | {ours:.4f} |")
    print(f"| {Path(args.data).stem} | HistGradientBoosting defaults | {base:.4f} |")
    print(f"AUC ratio automl-flow / baseline: {ours / base:.4f}")
    print(f"trials: {result['trials']} (child runs: {len(children)}), validation: {result['validation']}")
    print(f"wall: {total:.1f} s total; flow body {result['wall_seconds']:.1f} s; "
          f"imports {import_seconds:.1f} s; Prefect/MLflow start-up and teardown "
          f"{total - result['wall_seconds']:.1f} s; trial fit+predict {fitting:.1f} s "
          f"({fitting / total:.0%} of the wall time)")


if __name__ == "__main__":
    main()
