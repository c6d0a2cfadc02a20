"""Evaluate one candidate: fit on every fold, predict the validation rows, score every metric."""

from __future__ import annotations

import io
import pickle
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from tasks.estimators import early_stopping, rounds_used
from tasks.families import FAMILIES, build_pipeline, openmp_threads
from tasks.config import AutoMLConfig
from tasks.features import ColumnRoles, featurization_enabled
from tasks.guardrails import Profile
from tasks.metrics import METRICS, Metric, early_stopping_watch, score_all
from tasks.split import SearchData

__all__ = ["Candidate", "TrialResult", "TrialSettings", "trial_settings", "evaluate_candidate",
           "predict_scores"]


@dataclass(frozen=True)
class Candidate:
    number: int
    family: str
    params: dict[str, Any]
    # Cheap fidelity first: after fold i the mean of its fold scores so far must not be worse
    # than prune_bars[i] (the median of the finished trials there, tasks.search), or the trial
    # stops, pruned. Empty: every fold runs.
    prune_bars: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return f"{FAMILIES[self.family].name}-{self.number}"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a run shares besides the data."""

    roles: ColumnRoles
    seed: int
    n_jobs: int
    featurize: bool = True
    # Boosting rounds stop on each fold's validation rows when this stops improving: "auc",
    # "loss" (the model's own), or None: no early stopping (metrics.early_stopping_watch).
    early_stopping: str | None = None
    metric: str | None = None  # the primary metric: each fold is scored with it, for pruning


@dataclass(frozen=True, eq=False)
class TrialResult:
    candidate: Candidate
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: np.ndarray | None = None  # validation predictions, in SearchData.valid_rows order
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    error: str | None = None
    reason: str | None = None  # why it failed: error | timeout | memory | budget | interrupted
    worker: str = ""  # host:pid of the process that supervised the trial
    model_bytes: int = 0  # pickled size of one fitted fold's pipeline
    # What the refit on all rows changes in the candidate's parameters: a boosting model stopped
    # early takes the rounds its folds kept on average.
    refit_params: dict[str, Any] = field(default_factory=dict)
    fold_scores: tuple[float, ...] = ()  # the primary metric on each fold run (NaN: undefined)
    # The sampler proposed a configuration already tried: that trial's number, whose result
    # stands for this one (not run again, not an ensemble member).
    duplicate_of: int | None = None

    @property
    def status(self) -> str:
        """As the leaderboard and MLflow show it: ok, duplicate (a configuration tried before,
        not run again), pruned (stopped after a fold, worse than the median there) or failed."""
        if self.duplicate_of is not None:
            return "duplicate"
        return "ok" if self.ok else "pruned" if self.reason == "pruned" else "failed"

    @property
    def final_params(self) -> dict[str, Any]:
        """The parameters the final model is refit with."""
        return {**self.candidate.params, **self.refit_params}


def trial_settings(config: AutoMLConfig, profile: Profile, data: SearchData) -> TrialSettings:
    """What every trial of a run shares besides the data."""
    n_classes = None if data.classes is None else len(data.classes)
    return TrialSettings(
        profile.roles, config.random_state, config.threads_per_trial,
        featurize=featurization_enabled(config),
        early_stopping=early_stopping_watch(profile.metric, n_classes),
        metric=profile.metric.name,
    )


def predict_scores(model: Pipeline, X: Any, classes: np.ndarray | None) -> np.ndarray:
    """Class probabilities in the order of `classes` (zeros for a class the model never saw),
    or regression values."""
    if classes is None:
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    proba /= proba.sum(axis=1, keepdims=True)  # float32 outputs (XGBoost) drift from 1
    fitted = np.asarray(model.classes_)
    if len(fitted) == len(classes) and np.array_equal(fitted, classes):
        return proba
    full = np.zeros((proba.shape[0], len(classes)))
    full[:, np.searchsorted(classes, fitted)] = proba
    return full


def fit_pipeline(
    pipeline: Pipeline, data: SearchData, rows: np.ndarray, n_jobs: int,
    stop_on: np.ndarray | None = None, watch: str | None = None,
) -> Pipeline:
    """Fit on `rows`. With `stop_on` (the fold's validation rows), a boosting model stops adding
    rounds when its `watch` ("auc", or "loss": its own) on them stops improving; other models
    ignore it."""
    X, y = data.X.iloc[rows], data.y[rows]
    weights = {} if data.weights is None else {"sample_weight": data.weights[rows]}
    with _thread_cap(n_jobs):
        if stop_on is None or len(pipeline) < 2:
            return pipeline.fit(X, y, **{f"model__{k}": v for k, v in weights.items()})
        # The steps one by one, as Pipeline.fit does, so the watched rows can be featurized by
        # the fitted features step. Rows of a class the fit rows lack are not watched.
        features, model = pipeline[:-1], pipeline[-1]
        Xt = features.fit_transform(X, y)
        watched = stop_on if data.classes is None else stop_on[np.isin(data.y[stop_on], y)]
        extra = early_stopping(model, features.transform(data.X.iloc[watched]), data.y[watched],
                               None if watch == "loss" else watch)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
            model.fit(Xt, y, **weights, **(extra or {}))
        return pipeline


def _thread_cap(n_jobs: int) -> threadpool_limits:
    # OpenMP-based models (histogram boosting) ignore n_jobs; cap their threads here instead.
    if n_jobs < 1:
        return threadpool_limits(limits=None)
    return threadpool_limits(limits={"openmp": openmp_threads(n_jobs), "blas": n_jobs})


def evaluate_candidate(candidate: Candidate, data: SearchData, settings: TrialSettings) -> TrialResult:
    """Never raises for a bad candidate: a failure is a result, so the search goes on."""
    fit_seconds = predict_seconds = 0.0
    metric = METRICS.get(settings.metric or "")
    scores: list[float] = []
    try:
        parts, rounds = [], []
        for fit_rows, valid_rows in data.folds:
            pipeline = build_pipeline(
                candidate.family,
                candidate.params,
                task=data.task,
                roles=settings.roles,
                seed=settings.seed,
                n_jobs=settings.n_jobs,
                featurize=settings.featurize,
            )
            started = time.perf_counter()
            fit_pipeline(pipeline, data, fit_rows, settings.n_jobs,
                         stop_on=valid_rows if settings.early_stopping else None,
                         watch=settings.early_stopping)
            rounds.append(rounds_used(pipeline[-1]))
            fitted = time.perf_counter()
            with _thread_cap(settings.n_jobs):  # predicting spins OpenMP threads too
                parts.append(predict_scores(pipeline, data.X.iloc[valid_rows], data.classes))
            fit_seconds += fitted - started
            predict_seconds += time.perf_counter() - fitted
            if metric is None:
                continue
            scores.append(_fold_score(metric, data, valid_rows, parts[-1]))
            if (why := _pruned(metric, scores, candidate.prune_bars, len(data.folds))) is not None:
                return TrialResult(candidate, False, fit_seconds=fit_seconds,
                                   predict_seconds=predict_seconds, error=why, reason="pruned",
                                   fold_scores=tuple(scores))
        predictions = np.concatenate(parts)
        if not np.all(np.isfinite(predictions)):
            raise ValueError("the model predicted non-finite values")
        model_bytes = _pickled_size(pipeline)
        metrics = score_all(
            data.task, data.y_valid, predictions, data.weights_valid, data.y_range, data.positive
        )
    except Exception as exc:  # noqa: BLE001 - any failure of a candidate is recorded, not raised
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return TrialResult(candidate, False, fit_seconds=fit_seconds, error=detail[:2000],
                           reason="error")
    return TrialResult(candidate, True, metrics, predictions, fit_seconds, predict_seconds,
                       model_bytes=model_bytes, refit_params=_refit_rounds(rounds),
                       fold_scores=tuple(scores))


class _ByteCounter(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: Any) -> int:
        size = memoryview(chunk).nbytes  # bytes, or a PickleBuffer of an array's data
        self.size += size
        return size


def _pickled_size(model: Any) -> int:
    """Bytes of the pickled model, counted as they stream out: a forest of deep trees pickles
    to hundreds of MB, which pickle.dumps would hold in memory a second time."""
    counter = _ByteCounter()
    pickle.dump(model, counter, protocol=pickle.HIGHEST_PROTOCOL)
    return counter.size


def _fold_score(metric: Metric, data: SearchData, rows: np.ndarray, pred: np.ndarray) -> float:
    y = data.y[rows]
    if data.classes is not None:
        y = np.searchsorted(data.classes, y)
    weights = None if data.weights is None else data.weights[rows]
    try:
        return metric(y, pred, weights, data.y_range, data.positive)
    except ValueError:  # e.g. AUC on a fold that lacks a class
        return float("nan")


def _pruned(metric: Metric, scores: list[float], bars: tuple[float, ...], folds: int) -> str | None:
    """Why the trial stops after this fold, or None: it goes on."""
    step = len(scores) - 1
    if step >= min(len(bars), folds - 1) or np.isnan(bars[step]):
        return None
    mean = float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan")
    if np.isnan(mean) or not metric.better(bars[step], mean):
        return None
    return (f"pruned after fold {step + 1} of {folds}: {metric.name} {mean:.4f} there, worse than "
            f"{bars[step]:.4f}, the median of the finished trials")


def _refit_rounds(rounds: list[int | None]) -> dict[str, Any]:
    """The folds' kept rounds, averaged, for the refit on all rows (LightGBM and XGBoost both
    call them n_estimators)."""
    if not rounds or any(r is None for r in rounds):
        return {}
    return {"n_estimators": max(1, round(sum(rounds) / len(rounds)))}
