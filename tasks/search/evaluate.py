"""Evaluate one candidate: fit on every fold, predict the validation rows, score every metric."""

from __future__ import annotations

import io
import pickle
import time
import traceback
from typing import Any

import numpy as np

from tasks.data.sets import SearchData
from tasks.metrics import METRICS, Metric, score_all
from tasks.models.boosting import rounds_used
from tasks.models.pipeline import build_pipeline, fit_pipeline, thread_cap
from tasks.models.predict import predict_scores
from tasks.search.candidates import Candidate, TrialResult, TrialSettings

__all__ = ["evaluate_candidate"]


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
            with thread_cap(settings.n_jobs):  # predicting spins OpenMP threads too
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
