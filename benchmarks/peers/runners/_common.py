"""What every runner shares: its arguments, and the one predictions format the harness scores.

Runners run under different interpreters (.venv for automl-flow and scikit-learn, .venv-bench for
FLAML and AutoGluon), so they import nothing from the project and only pandas/numpy from outside.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--task", required=True, choices=["binary", "multiclass", "regression"])
    parser.add_argument("--budget", type=float, required=True, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True, help="predictions parquet")
    parser.add_argument("--model", help="a trained .pkl to predict with (predict_pkl only)")
    parser.add_argument("--presets", default="medium_quality", help="AutoGluon's presets")
    return parser.parse_args()


def features(path: str, target: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(path)
    return frame.drop(columns=[target]), frame[target]


def write_predictions(path: str, values: Any, classes: Any = None) -> None:
    """Class probabilities as one column per label (named by str(label)), or `prediction`."""
    if classes is None:
        frame = pd.DataFrame({"prediction": np.asarray(values, dtype=float).ravel()})
    else:
        frame = pd.DataFrame(np.asarray(values, dtype=float), columns=[str(c) for c in classes])
    frame.to_parquet(path, index=False)


def report(**info: Any) -> None:
    """The last stdout line: when training ended (epoch seconds) and anything worth showing."""
    print(json.dumps({"trained_at": time.time(), **info}, default=str), flush=True)


def write_model_predictions(path: str, model: Any, X: pd.DataFrame, task: str) -> None:
    """A fitted scikit-learn-style model's values (regression) or class probabilities."""
    if task == "regression":
        write_predictions(path, model.predict(X))
    else:
        write_predictions(path, model.predict_proba(X), model.classes_)
