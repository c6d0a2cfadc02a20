"""Real final models, refitted as a run refits them, on shared tables (the explain tests')."""

from __future__ import annotations

import json

from support import dataset_path, load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.final.choice import SINGLE, VOTING, Choice
from tasks.final.refit import refit_model
from tasks.search.candidates import Candidate, TrialResult

# Small enough to refit in seconds; the families a run registers, at cheap settings.
FAMILIES = {
    "lightgbm": {"n_estimators": 30},
    "xgboost": {"n_estimators": 30},
    "random_forest": {"n_estimators": 20},
    "logistic_regression": {},
    "lasso_lars": {},
    "extra_trees": {"n_estimators": 20},
    "catboost": {"n_estimators": 30},
    "knn": {},
    "elastic_net": {},
}


def table(name: str, rows: int | None = None):
    """A shared table (its first `rows` rows), its target and its task, as the manifest says."""
    entry = next(d for d in json.loads((dataset_path(name).parent / "manifest.json").read_text())
                 if d["name"] == name)
    frame = load(name)
    task = "regression" if entry["task"] == "regression" else "classification"
    return (frame if rows is None else frame.iloc[:rows]), entry["target"], task


def fit_final(frame, target: str, task: str, members: list[str], weights=None, onnx=False):
    """The final model a run registers for these members: one pipeline, or a voting ensemble
    (onnx: as enable_onnx_compatible_models builds them)."""
    from flows.steps import trial_settings

    config = parse_config(training_data="table.parquet", target=target, task=task,
                          n_cross_validations=3, enable_onnx_compatible_models=onnx)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = trial_settings(config, profile, data)
    results = tuple(TrialResult(Candidate(i, key, FAMILIES[key]), True)
                    for i, key in enumerate(members))
    kind = SINGLE if len(members) == 1 else VOTING
    choice = Choice(results, tuple(weights or [1.0] * len(members)), {}, kind)
    return refit_model(choice, data, settings)
