"""Evaluate one candidate: fit on every fold, predict the validation rows, score every metric."""

from __future__ import annotations

import io
import pickle
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tasks.metrics import METRICS, score_all
from tasks.models.boosting import always_stops, rounds_param, rounds_used, stopping_split
from tasks.models.pipeline import (
    build_pipeline,
    fit_model,
    preprocessing_key,
    thread_cap,
    watched_rows,
)
from tasks.models.predict import predict_scores
from tasks.search.candidates import TrialResult
from tasks.search.encoded import encoded_fold
from tasks.search.screening import screening_rows

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from tasks.data.sets import SearchData
    from tasks.metrics import Metric
    from tasks.search.candidates import Candidate, TrialSettings
    from tasks.types import Array, Estimator, Params, Rows

__all__ = ["evaluate_candidate", "one_row_ms", "pickled_size"]

ROW_CALLS = 3  # single-row predicts timed per trial: the median of three shrugs off one hiccup
# Timed again only while the calls so far took less than this: a model slower per row is timed
# once, so the timing costs the trial about one row's predict. Measured on 2 busy cores, one
# DataFrame row through a featurizing pipeline took 8-38 ms (credit_g, california_housing).
ROW_BUDGET_SECONDS = 0.005


@dataclass
class _Folds:
    """What the folds run so far produced; a failed trial still reports their time."""

    parts: list[Array] = field(default_factory=list)  # each fold's validation predictions
    rounds: list[int | None] = field(default_factory=list)  # boosting rounds each fit kept
    rounds_param: str = "n_estimators"  # the estimator parameter that sets them at the refit
    scores: list[float] = field(default_factory=list)  # the primary metric on each fold
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    reused_seconds: float = 0.0
    featurize_seconds: float = 0.0


def evaluate_candidate(
    candidate: Candidate, data: SearchData, settings: TrialSettings
) -> TrialResult:
    """Never raises for a bad candidate: a failure is a result, so the search goes on."""
    metric = METRICS.get(settings.metric or "")
    folds = _Folds()
    try:
        model_bytes, row_ms = 0, None
        for fold, (_, valid_rows) in enumerate(data.folds):
            pipeline = _run_fold(candidate, data, settings, fold, folds)
            if fold == len(data.folds) - 1:
                model_bytes = pickled_size(pipeline)
                row_ms = one_row_ms(pipeline, data.X.iloc[valid_rows[:1]], data.classes,
                                    settings.n_jobs)
            # Not held while the next fold fits: two deep forests at once doubled a trial's peak.
            del pipeline
            if metric is None:
                continue
            folds.scores.append(_fold_score(metric, data, valid_rows, folds.parts[-1]))
            why = _pruned(metric, folds.scores, candidate.prune_bars, len(data.folds))
            if why is not None:
                return TrialResult(candidate, False, fit_seconds=folds.fit_seconds,
                                   predict_seconds=folds.predict_seconds,
                                   reused_seconds=folds.reused_seconds, error=why,
                                   reason="pruned", fold_scores=tuple(folds.scores))
        predictions = np.concatenate(folds.parts)
        if not np.all(np.isfinite(predictions)):
            raise ValueError("the model predicted non-finite values")
        metrics = score_all(
            data.task, data.y_valid, predictions, data.weights_valid, data.y_range, data.positive
        )
    except Exception as exc:  # noqa: BLE001 - any failure of a candidate is recorded, not raised
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return TrialResult(candidate, False, fit_seconds=folds.fit_seconds, error=detail[:2000],
                           reason="error", reused_seconds=folds.reused_seconds)
    return TrialResult(candidate, True, metrics, predictions, folds.fit_seconds,
                       folds.predict_seconds, reused_seconds=folds.reused_seconds,
                       model_bytes=model_bytes, predict_ms_per_row=row_ms,
                       refit_params=_refit_rounds(folds.rounds, folds.rounds_param),
                       fold_scores=tuple(folds.scores),
                       featurize_seconds=folds.featurize_seconds)


def _run_fold(
    candidate: Candidate, data: SearchData, settings: TrialSettings, fold: int, folds: _Folds,
) -> Estimator:
    """Fit a fresh model on the fold's fit rows, featurized as the worker first did for this
    fold and kind of family (tasks.search.encoded), and predict its validation rows, adding both
    to `folds` (its time only once it predicted); the fitted pipeline."""
    fit_rows, valid_rows = data.folds[fold]
    pipeline = build_pipeline(
        candidate.family,
        candidate.params,
        task=data.task,
        roles=settings.roles,
        seed=settings.seed,
        n_jobs=settings.n_jobs,
        featurize=settings.featurize, onnx=settings.onnx,
        n_classes=0 if data.classes is None else len(data.classes),
        n_rows=len(fit_rows) if candidate.rows is None else candidate.rows,
    )
    started = time.perf_counter()
    encoded, fresh = encoded_fold(data, fold, preprocessing_key(candidate.family,
                                                                settings.featurize, settings.onnx),
                                  pipeline[0], settings.n_jobs)
    pipeline.steps[0] = (pipeline.steps[0][0], encoded.features)
    model, X, y = pipeline[-1], encoded.fit, data.y[fit_rows]
    weights = None if data.weights is None else data.weights[fit_rows]
    if candidate.rows is not None:  # a screening job: the run's same subsample every time
        sub = screening_rows(y, candidate.rows, settings.seed + fold, data.classes is not None)
        X = X.iloc[sub] if hasattr(X, "iloc") else X[sub]
        y, weights = y[sub], None if weights is None else weights[sub]
        fit_rows = fit_rows[sub]
    watched = None
    if always_stops(model):  # the boosters; the MLP stops on rows of its own
        if settings.stop_share is None:
            # The rows that score the model also choose its rounds: measured on the meta tables,
            # that flatters the boosters no more than the other families' CV flatters them, and
            # stopping on a slice of the fit rows instead chose worse models
            # (benchmarks/results/2026-12-06-issue16.md, "Honest early stopping").
            mask = watched_rows(data, y, valid_rows)
            watched = (encoded.valid[mask], data.y[valid_rows][mask])
        else:
            # Seeded per fold: the same rows for every trial of the run, whatever its worker.
            fit, stop = stopping_split(y, settings.stop_share, settings.seed + fold,
                                       data.classes is not None)
            mask = watched_rows(data, y[fit], fit_rows[stop])
            watched = (X[stop[mask]], y[stop[mask]])
            X, y = X[fit], y[fit]
            weights = None if weights is None else weights[fit]
    with thread_cap(settings.n_jobs):
        fit_model(model, X, y, weights, watched, settings.early_stopping, settings.fit_seconds)
    folds.rounds.append(rounds_used(model))
    folds.rounds_param = rounds_param(model)
    fitted = time.perf_counter()
    with thread_cap(settings.n_jobs):  # predicting spins OpenMP threads too
        folds.parts.append(predict_scores(model, encoded.valid, data.classes))
    # A fold featurized for an earlier trial costs this one nothing, but the refit on all rows
    # will featurize again: the estimates made from fit_seconds count it.
    reused = 0.0 if fresh else encoded.seconds
    folds.fit_seconds += fitted - started + reused
    folds.reused_seconds += reused
    folds.featurize_seconds += encoded.seconds
    folds.predict_seconds += time.perf_counter() - fitted
    return pipeline


def one_row_ms(model: Estimator, row: Rows, classes: Array | None, n_jobs: int) -> float:
    """Milliseconds to predict one raw row with the fitted pipeline: the median of up to
    ROW_CALLS calls. No warm-up call: the model has just predicted a batch, so its lazy set-up
    is paid."""
    times: list[float] = []
    with thread_cap(n_jobs):
        while len(times) < ROW_CALLS and sum(times) < ROW_BUDGET_SECONDS:
            started = time.perf_counter()
            predict_scores(model, row, classes)
            times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1e3


class _ByteCounter(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, chunk: ReadableBuffer) -> int:
        size = memoryview(chunk).nbytes  # bytes, or a PickleBuffer of an array's data
        self.size += size
        return size


def pickled_size(model: object) -> int:
    """Bytes of the pickled model, counted as they stream out: a forest of deep trees pickles
    to hundreds of MB, which pickle.dumps would hold in memory a second time."""
    counter = _ByteCounter()
    pickle.dump(model, counter, protocol=pickle.HIGHEST_PROTOCOL)
    return counter.size


def _fold_score(metric: Metric, data: SearchData, rows: Array, pred: Array) -> float:
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


def _refit_rounds(rounds: list[int | None], param: str) -> Params:
    """The folds' kept rounds (or an MLP's epochs), averaged, for the refit on all rows as
    `param`; none for a model without rounds. A fold that kept none (no early stopping, which the
    boosters always have) does not count: without the others, the refit would run the ceiling."""
    kept = [r for r in rounds if r is not None]
    if not kept:
        return {}
    return {param: max(1, round(sum(kept) / len(kept)))}
