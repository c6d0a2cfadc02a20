"""One distributed trial: LightGBM or XGBoost trained data-parallel on the workers' partitions
(lightgbm.dask, xgboost.dask), its rounds chosen on the validation rows, scored there, and
returned as the library's ordinary single-node model.

Rounds: XGBoost stops early on the validation rows (its workers agree through its collective).
LightGBM's Dask interface cannot stop early (a worker that stops alone leaves the others waiting),
so it trains the rounds the trial can afford and the validation rows choose how many to keep: the
model's raw outputs are summed checkpoint by checkpoint, one pass over the trees.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.distributed.data import Y

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from tasks.distributed.data import ClusterTable
    from tasks.metrics import Metric
    from tasks.types import Array, Estimator, Params

__all__ = ["Fitted", "fit_trial", "predict_parts", "CHECKPOINTS", "FAMILIES"]

FAMILIES = ("lightgbm", "xgboost")
CHECKPOINTS = 20  # rounds LightGBM's validation curve is read at
PATIENCE = 50  # XGBoost's early-stopping rounds
_CURVE_BYTES = 400e6  # the validation curve gathered on the client, at most


@dataclass(frozen=True)
class Fitted:
    model: Estimator  # single-node, trained on label codes
    rounds: int  # kept
    trained_rounds: int  # trained (LightGBM: the validation rows chose `rounds` of them)
    score: float  # the primary metric on the validation rows
    predictions: Array  # on the validation rows (probabilities, or values)
    fit_seconds: float
    curve: dict[int, float] = field(default_factory=dict)  # rounds -> score (LightGBM)


def fit_trial(client: Client, family: str, params: Params, table: ClusterTable,
              metric: Metric, rounds: int, seed: int, threads: int) -> Fitted:
    """Train `family` with `params` on the training partitions, up to `rounds` rounds."""
    started = time.monotonic()
    X, y = table.train.drop(columns=[Y]), table.train[Y]
    classify = table.classes is not None
    if family == "lightgbm":
        return _lightgbm(client, params, table, metric, rounds, seed, threads, X, y, classify,
                         started)
    if family == "xgboost":
        return _xgboost(client, params, table, metric, rounds, seed, threads, X, y, classify,
                        started)
    raise ValueError(f"distributed training has no family {family!r}; it has {FAMILIES}")


def predict_parts(client: Client, model: Estimator, frame: dd.DataFrame) -> Array:
    """The model's probabilities (or values) for every row of a persisted side, predicted where
    its partitions are and gathered in partition order."""
    from dask.base import compute
    from dask.delayed import delayed

    shared = client.scatter(model, broadcast=True, hash=False)  # sent once, not per partition
    parts = [delayed(_predict)(shared, part) for part in frame.to_delayed()]
    out = compute(*parts)
    return np.concatenate(out) if out else np.empty(0)


def _predict(model: Estimator, part: object) -> Array:
    X = part.drop(columns=[Y])  # type: ignore[attr-defined]
    if hasattr(model, "predict_proba"):
        proba: Array = np.asarray(model.predict_proba(X), dtype=np.float64)
        proba /= proba.sum(axis=1, keepdims=True)  # XGBoost's float32 outputs drift from 1
        return proba
    values: Array = np.asarray(model.predict(X), dtype=np.float64)
    return values


def _score(metric: Metric, table: ClusterTable, pred: Array) -> float:
    return metric(table.y_valid, pred, None, table.y_range)


def _lightgbm(client: Client, params: Params, table: ClusterTable, metric: Metric, rounds: int,
              seed: int, threads: int, X: dd.DataFrame, y: dd.Series, classify: bool,
              started: float) -> Fitted:
    from lightgbm import DaskLGBMClassifier, DaskLGBMRegressor

    kind = DaskLGBMClassifier if classify else DaskLGBMRegressor
    settings: dict[str, Any] = {"n_estimators": rounds, "random_state": seed, "n_jobs": threads,
                                "verbose": -1, **params}
    estimator = kind(client=client, **settings)
    categorical = list(range(table.n_categorical))
    estimator.fit(X, y, categorical_feature=categorical or "auto")
    local = estimator.to_local()
    trained = int(local.booster_.current_iteration())
    n_classes = 0 if table.classes is None else len(table.classes)
    points = _checkpoints(trained, len(table.y_valid), max(n_classes, 1))
    scores: dict[int, float] = {}
    best, kept = points[-1], np.empty(0)
    # Each checkpoint's outputs are made, scored and dropped: only the best are kept.
    for point, raw in zip(points, _curve(client, local, table.valid, points), strict=True):
        pred = _outputs(raw, n_classes)
        scores[point] = _score(metric, table, pred)
        if len(scores) == 1 or metric.better(scores[point], scores[best]):
            best, kept = point, pred
    _truncate(local, best)
    return Fitted(local, best, trained, scores[best], kept, time.monotonic() - started, scores)


def _checkpoints(trained: int, rows: int, width: int) -> list[int]:
    """Rounds to read the validation curve at: up to CHECKPOINTS, fewer when the curve of many
    classes on many rows would not fit _CURVE_BYTES."""
    count = int(max(2, min(CHECKPOINTS, _CURVE_BYTES / (8 * max(rows, 1) * width))))
    return sorted({max(1, round(trained * (i + 1) / count)) for i in range(count)})


def _curve(client: Client, model: Estimator, valid: dd.DataFrame,
           points: list[int]) -> list[Array]:
    """The model's raw outputs on the validation rows after each checkpoint's rounds."""
    from dask.base import compute
    from dask.delayed import delayed

    booster = client.scatter(model.booster_, broadcast=True, hash=False)
    parts = [delayed(_raw_curve)(booster, part, points) for part in valid.to_delayed()]
    return [np.concatenate(side) for side in zip(*compute(*parts), strict=True)]


def _raw_curve(booster: object, part: object, points: list[int]) -> list[Array]:
    """Raw outputs after each checkpoint's rounds, each tree read once."""
    X = part.drop(columns=[Y])  # type: ignore[attr-defined]
    total: Array | None = None
    out, start = [], 0
    for point in points:
        step = booster.predict(X, start_iteration=start, num_iteration=point - start,  # type: ignore[attr-defined]
                               raw_score=True)
        total = step if total is None else total + step
        out.append(total.copy())
        start = point
    return out


def _outputs(raw: Array, n_classes: int) -> Array:
    """Raw scores as the model's outputs: probabilities (binary: sigmoid, more: softmax), or the
    regression's values as they are (objective l2)."""
    if n_classes == 0:
        return raw
    if n_classes == 2:
        positive = 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - positive, positive])
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    proba: Array = shifted / shifted.sum(axis=1, keepdims=True)
    return proba


def _truncate(model: Estimator, rounds: int) -> None:
    """Keep the first `rounds` rounds of a fitted LGBMModel, as if it had trained only those."""
    import lightgbm

    booster = model.booster_
    if rounds >= booster.current_iteration():
        return
    kept = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    model._Booster = kept  # noqa: SLF001 - the sklearn wrapper reads its booster from here


def _xgboost(client: Client, params: Params, table: ClusterTable, metric: Metric, rounds: int,
             seed: int, threads: int, X: dd.DataFrame, y: dd.Series, classify: bool,
             started: float) -> Fitted:
    import xgboost
    import xgboost.dask as dxgb

    width = len(X.columns)
    kind = dxgb.DaskXGBClassifier if classify else dxgb.DaskXGBRegressor
    settings: dict[str, Any] = {
        "n_estimators": rounds, "early_stopping_rounds": PATIENCE, "tree_method": "hist",
        "enable_categorical": True, "random_state": seed, "n_jobs": threads,
        "feature_types": ["c"] * table.n_categorical + ["q"] * (width - table.n_categorical),
        **params}
    estimator = kind(**settings)
    estimator.client = client
    valid = table.valid
    estimator.fit(X, y, eval_set=[(valid.drop(columns=[Y]), valid[Y])], verbose=False)
    booster = estimator.get_booster()
    best = int(getattr(estimator, "best_iteration", booster.num_boosted_rounds() - 1)) + 1
    trained = booster.num_boosted_rounds()
    local = (xgboost.XGBClassifier if classify else xgboost.XGBRegressor)(
        **{k: v for k, v in settings.items() if k != "early_stopping_rounds"})
    local.load_model(bytearray(booster[:best].save_raw(raw_format="ubj")))
    pred = predict_parts(client, local, valid)
    return Fitted(local, best, trained, _score(metric, table, pred), pred,
                  time.monotonic() - started)
