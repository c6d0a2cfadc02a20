"""The measuring side of benchmarks/early_stopping.py (see its docstring): each configuration on
one meta table, evaluated as a trial is, refit as the flow refits and scored on held-out rows,
under both early-stopping variants, with Caruana's ensemble of each variant's models."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import AutoMLError
from tasks.final.choice import Choice
from tasks.final.ensemble import voting_ensemble
from tasks.final.refit import refit_model
from tasks.metrics import default_metric, early_stopping_watch, score_all
from tasks.models.boosting import always_stops
from tasks.models.pipeline import build_pipeline
from tasks.models.predict import predict_scores
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.portfolio import load_portfolio
from tasks.search.spaces import load_space

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
TASKS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
BOOSTERS = ("LightGBM", "CatBoost", "XGBoost")
REFERENCES = ("RandomForest", "ExtraTrees", "HistGB")


def configurations(xgboost: str = "default") -> dict[str, tuple[str, dict]]:
    """Name -> (family, parameters): LightGBM's and CatBoost's first defaults; XGBoost's second
    default (the hand-written portfolio's XGBoost entry, seed 0's) or with "portfolio" the first
    XGBoost entry of today's portfolio (the learned one, seed 1's); the non-boosting references'
    first defaults."""
    first = {k: dict(load_space(k).defaults[0]) for k in
             ("lightgbm", "catboost", "random_forest", "extra_trees", "gradient_boosting")}
    xgb = (dict(next(p for f, p in load_portfolio() if f == "xgboost")) if xgboost == "portfolio"
           else dict(load_space("xgboost").defaults[1]))
    return {"LightGBM": ("lightgbm", first["lightgbm"]),
            "CatBoost": ("catboost", first["catboost"]),
            "XGBoost": ("xgboost", xgb),
            "RandomForest": ("random_forest", first["random_forest"]),
            "ExtraTrees": ("extra_trees", first["extra_trees"]),
            "HistGB": ("gradient_boosting", first["gradient_boosting"])}


@dataclass
class Scored:
    cv: float
    test: float
    rounds: int | None  # the refit's rounds (boosters that stopped early)
    seconds: float
    result: object  # the TrialResult, for the ensemble
    test_pred: np.ndarray


def _capped(frame: pd.DataFrame, target: str, classify: bool, rows: int, seed: int
            ) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    y = frame[target]
    stratify = y if classify and y.value_counts().min() >= 2 else None
    kept, _ = train_test_split(frame, train_size=rows, stratify=stratify, random_state=seed)
    return kept.reset_index(drop=True)


def run_table(entry: dict, seed: int, max_rows: int, share: float, xgboost: str = "default"
              ) -> dict | None:
    task = TASKS[entry["task"]]
    classify = task == "classification"
    target = entry["target"]
    frame = pd.read_parquet(META / entry["file"])
    frame = frame[frame[target].notna()]
    counts = frame[target].value_counts()
    train, test = train_test_split(frame, test_size=0.2, random_state=seed,
                                   stratify=frame[target] if classify and counts.min() >= 2
                                   else None)
    train = _capped(train, target, classify, max_rows, seed)
    test = _capped(test, target, classify, max_rows, seed)
    config = parse_config(training_data=entry["name"], target=target, task=task,
                          primary_metric=default_metric(task), random_state=seed)
    try:
        profile = inspect_data(config, train)
    except AutoMLError as exc:
        print(f"{entry['name']}: refused: {exc}", file=sys.stderr)
        return None
    data, _ = split_data(SplitPlan.of(config), profile, train)
    metric = profile.metric
    n_classes = None if data.classes is None else len(data.classes)
    watch = early_stopping_watch(metric, n_classes)
    today = TrialSettings(profile.roles, seed=seed, n_jobs=1, early_stopping=watch,
                          metric=metric.name, stop_share=None)
    variants = {"a": today, "b": replace(today, stop_share=share)}
    y_test = test[target].to_numpy()
    if data.classes is not None:
        y_test = np.searchsorted(data.classes, y_test)
    X_test = test.drop(columns=[target])

    def scored(name: str, family: str, params: dict, settings: TrialSettings) -> Scored:
        started = time.perf_counter()
        result = evaluate_candidate(Candidate(0, family, params), data, settings)
        if not result.ok:
            raise RuntimeError(f"{entry['name']} {name}: {result.error}")
        model = refit_model(Choice((result,), (1.0,), result.metrics), data, settings)
        pred = predict_scores(model, X_test, data.classes)
        test_score = score_all(task, y_test, pred, None, data.y_range, data.positive)[metric.name]
        rounds = result.refit_params.get("n_estimators")
        return Scored(result.metrics[metric.name], test_score,
                      None if rounds is None else int(rounds),  # type: ignore[arg-type]
                      time.perf_counter() - started, result, pred)

    out: dict[str, dict[str, Scored]] = {"a": {}, "b": {}}
    for name, (family, params) in configurations(xgboost).items():
        probe = build_pipeline(family, params, task=task, roles=profile.roles, seed=seed,
                               n_jobs=1, n_classes=n_classes or 0)[-1]
        stops = name in BOOSTERS and (watch is not None or always_stops(probe))
        out["a"][name] = scored(name, family, params, variants["a"])
        # A model that does not stop early fits alike under both variants.
        out["b"][name] = (scored(name, family, params, variants["b"]) if stops
                          else out["a"][name])
    record: dict = {"table": entry["name"], "task": entry["task"], "metric": metric.name,
                    "greater": metric.greater_is_better, "scheme": data.scheme,
                    "rows": len(train), "test_rows": len(test), "watch": watch}
    for variant, models in out.items():
        record[variant] = {n: {"cv": s.cv, "test": s.test, "rounds": s.rounds,
                               "seconds": round(s.seconds, 2)} for n, s in models.items()}
        pool = [models[n].result for n in models]
        blend = voting_ensemble(pool, data, metric, 15)  # type: ignore[arg-type]
        if blend is None:  # one member: the best single model
            best = max(models, key=lambda n: models[n].cv * (1 if metric.greater_is_better
                                                             else -1))
            weights = {best: 1.0}
            ens_cv = models[best].cv
        else:
            names = {id(models[n].result): n for n in models}
            weights = {names[id(m)]: w for m, w in zip(blend.members, blend.weights, strict=True)}
            ens_cv = blend.metrics[metric.name]
        total = sum(weights.values())
        pred = sum(models[n].test_pred * (w / total) for n, w in weights.items())
        record[variant]["ensemble"] = {
            "cv": ens_cv,
            "test": score_all(task, y_test, pred, None, data.y_range, data.positive)[metric.name],
            "booster_weight": sum(w for n, w in weights.items() if n in BOOSTERS) / total}
    return record
