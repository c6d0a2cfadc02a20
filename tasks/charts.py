"""The charts people look at after a run, as PNG files: the final model on held-out rows, and
the search itself.

Held-out rows are the test set when there is one, else the validation (out-of-fold) rows with
the chosen candidate's predictions of them (tasks.refit.HeldOutPredictions). Permutation
importance needs a fitted model: it permutes raw input columns through the whole refit
pipeline, on the same rows. A chart that cannot be drawn is skipped with the reason, never
failing the run.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, safe in worker threads

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import CalibrationDisplay  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    PredictionErrorDisplay,
    RocCurveDisplay,
)

from tasks.metrics import Metric  # noqa: E402
from tasks.refit import HeldOutPredictions  # noqa: E402
from tasks.trial import TrialResult, predict_scores  # noqa: E402

__all__ = ["ChartSet", "SearchTrace", "draw_charts", "MAX_CLASSES", "IMPORTANCE_ROWS"]

log = logging.getLogger("automl")

MAX_CLASSES = 10  # one-vs-rest curves for at most this many classes (the most frequent)
IMPORTANCE_ROWS = 2_000
IMPORTANCE_MIN_ROWS = 200
IMPORTANCE_REPEATS = 3
IMPORTANCE_SECONDS = 10.0  # aim: rows and repeats shrink so the shuffling takes about this long
MAX_FEATURES_SHOWN = 20
_DPI = 110


@dataclass(frozen=True)
class SearchTrace:
    """The search as the charts need it: trials in order, and when each was recorded."""

    results: tuple[TrialResult, ...]
    elapsed: tuple[float, ...]  # seconds since the run started, per result
    families: tuple[str, ...]


@dataclass
class ChartSet:
    folder: Path
    drawn: dict[str, str] = field(default_factory=dict)  # file name -> title
    skipped: dict[str, str] = field(default_factory=dict)  # chart -> why
    importance: dict[str, float] = field(default_factory=dict)  # raw column -> mean drop
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # file name -> seconds


def draw_charts(
    folder: Path, held: HeldOutPredictions, model: Any, metric: Metric, trace: SearchTrace,
    seed: int = 0, importance_seconds: float = IMPORTANCE_SECONDS,
    importance_limit: float = float("inf"),
) -> ChartSet:
    """Every chart for the task, each in its own file under folder."""
    started = time.perf_counter()
    charts = ChartSet(folder)
    folder.mkdir(parents=True, exist_ok=True)
    where = "test data" if held.basis == "test" else "validation data (out-of-fold)"
    if held.classes is not None:
        plots: dict[str, tuple[str, Callable[[], Any]]] = {
            "confusion_matrix.png": (f"Confusion matrix, {where}", lambda: _confusion(held)),
            "roc.png": (f"ROC curve, {where}", lambda: _roc(held)),
            "precision_recall.png": (f"Precision-recall, {where}", lambda: _pr(held)),
            "calibration.png": (f"Calibration, {where}", lambda: _calibration(held)),
            "lift_gains.png": (f"Cumulative gains and lift, {where}", lambda: _gains(held)),
        }
    else:
        plots = {
            "predicted_vs_true.png": (f"Predicted vs true, {where}", lambda: _pred_vs_true(held)),
            "residuals_histogram.png": (f"Residuals, {where}", lambda: _residual_hist(held)),
            "residuals_vs_predicted.png": (
                f"Residuals vs predicted, {where}", lambda: _residual_vs_pred(held)
            ),
        }
    plots["permutation_importance.png"] = (
        f"Permutation importance, {where}",
        lambda: _importance(held, model, metric, seed, charts, importance_seconds,
                            importance_limit),
    )
    plots["optimization_history.png"] = ("Optuna optimization history",
                                         lambda: _history(trace, metric))
    plots["best_so_far_time.png"] = (f"Best {metric.name} so far against elapsed time",
                                     lambda: _best_vs_time(trace, metric))
    plots["param_importance.png"] = ("Hyperparameter importance", lambda: _param_importance(trace, metric))
    for name, (title, draw) in plots.items():
        began = time.perf_counter()
        try:
            # Optuna's plots switch the global style to ggplot; the context undoes that.
            with warnings.catch_warnings(), plt.style.context("default"):
                warnings.simplefilter("ignore")
                figure = draw()
                figure.suptitle(title, fontsize=11)
                figure.tight_layout()
                figure.savefig(folder / name, dpi=_DPI)
            charts.drawn[name] = title
        except Exception as exc:  # noqa: BLE001 - a chart is never worth failing the run
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            charts.skipped[name] = reason[:300]
            log.warning("chart %s skipped: %s", name, reason[:200])
        finally:
            plt.close("all")
            charts.timings[name] = round(time.perf_counter() - began, 3)
    charts.seconds = time.perf_counter() - started
    return charts


def _figure(ncols: int = 1, width: float = 6.0) -> tuple[Any, Any]:
    return plt.subplots(1, ncols, figsize=(width * ncols, 5.0), squeeze=False)


def _shown_classes(held: HeldOutPredictions) -> list[int]:
    """Binary: the positive class alone. Multiclass: the most frequent classes, capped."""
    k = len(held.classes)
    if k == 2:
        return [held.positive]
    counts = np.bincount(held.y, minlength=k)
    return [int(i) for i in np.argsort(-counts, kind="stable")[:MAX_CLASSES] if counts[i] > 0]


def _confusion(held: HeldOutPredictions) -> Any:
    figure, axes = _figure(2, 5.5)
    labels = [str(c) for c in held.classes]
    truth, guess = held.y, np.argmax(held.pred, axis=1)
    for ax, normalize, title in ((axes[0, 0], None, "counts"),
                                 (axes[0, 1], "true", "normalized by true class")):
        ConfusionMatrixDisplay.from_predictions(
            truth, guess, labels=np.arange(len(labels)), display_labels=labels,
            normalize=normalize, ax=ax, colorbar=False, cmap="Blues",
            values_format="d" if normalize is None else ".2f",
            xticks_rotation=45 if len(labels) > 4 else "horizontal",
        )
        ax.set_title(title)
    return figure


def _one_vs_rest(held: HeldOutPredictions, display: Any, ax: Any, **kwargs: Any) -> None:
    for i in _shown_classes(held):
        display.from_predictions(held.y == i, held.pred[:, i], name=f"class {held.classes[i]}",
                                 ax=ax, **kwargs)


def _roc(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    ax = axes[0, 0]
    _one_vs_rest(held, RocCurveDisplay, ax, plot_chance_level=False)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def _pr(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    ax = axes[0, 0]
    _one_vs_rest(held, PrecisionRecallDisplay, ax)
    ax.set(xlabel="Recall", ylabel="Precision", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return figure


def _calibration(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    ax = axes[0, 0]
    bins = 10 if len(held.y) >= 200 else 5
    for n, i in enumerate(_shown_classes(held)):
        CalibrationDisplay.from_predictions(held.y == i, held.pred[:, i], n_bins=bins,
                                            strategy="quantile", name=f"class {held.classes[i]}",
                                            ax=ax, ref_line=n == 0)
    ax.set(xlabel="Mean predicted probability", ylabel="Fraction of positives")
    ax.legend(loc="upper left", fontsize=8)
    return figure


def _gains(held: HeldOutPredictions) -> Any:
    figure, axes = _figure(2, 5.5)
    gains_ax, lift_ax = axes[0, 0], axes[0, 1]
    for i in _shown_classes(held):
        order = np.argsort(-held.pred[:, i], kind="stable")
        hits = (held.y[order] == i).astype(float)
        if hits.sum() == 0:
            continue
        share = np.arange(1, len(hits) + 1) / len(hits)
        gains = np.cumsum(hits) / hits.sum()
        label = f"class {held.classes[i]}"
        gains_ax.plot(np.r_[0, share], np.r_[0, gains], label=label)
        # The first few rows make the lift jump around: it starts at 1% of the rows.
        start = max(0, int(0.01 * len(hits)) - 1)
        lift_ax.plot(share[start:], gains[start:] / share[start:], label=label)
    gains_ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    gains_ax.set(xlabel="Fraction of rows, highest scores first", ylabel="Fraction of class found",
                 title="Cumulative gains")
    lift_ax.axhline(1.0, linestyle="--", color="grey", label="random")
    lift_ax.set(xlabel="Fraction of rows, highest scores first", ylabel="Lift", title="Lift")
    for ax in (gains_ax, lift_ax):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return figure


def _pred_vs_true(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    PredictionErrorDisplay.from_predictions(held.y, held.pred, kind="actual_vs_predicted",
                                            ax=axes[0, 0], scatter_kwargs={"alpha": 0.5})
    axes[0, 0].set(xlabel="Predicted value", ylabel="True value")
    return figure


def _residual_hist(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    ax = axes[0, 0]
    residuals = held.y - held.pred
    ax.hist(residuals, bins=min(50, max(10, len(residuals) // 10)), color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(xlabel="Residual (true - predicted)", ylabel="Rows")
    return figure


def _residual_vs_pred(held: HeldOutPredictions) -> Any:
    figure, axes = _figure()
    PredictionErrorDisplay.from_predictions(held.y, held.pred, kind="residual_vs_predicted",
                                            ax=axes[0, 0], scatter_kwargs={"alpha": 0.5})
    axes[0, 0].set(xlabel="Predicted value", ylabel="Residual (true - predicted)")
    return figure


def _importance(held: HeldOutPredictions, model: Any, metric: Metric, seed: int,
                charts: ChartSet, aim: float, limit: float = float("inf")) -> Any:
    """Rows and repeats shrink towards `aim` seconds; the chart is given up, with the reason,
    when even the smallest pass would take longer than `limit` (the time budget's share)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(held.X))
    n_rows = min(len(order), IMPORTANCE_ROWS)
    sign = 1.0 if metric.greater_is_better else -1.0
    w_all = held.weights

    def score(estimator: Any, X_: pd.DataFrame, y_: np.ndarray) -> float:
        pred = predict_scores(estimator, X_, held.classes)
        w = None if w_all is None else w_all[np.sort(order[:len(y_)])]
        return sign * metric(y_, pred, w, held.y_range, held.positive)

    # One scoring pass is timed; rows and repeats shrink until the whole fits the aim.
    began = time.perf_counter()
    rows = np.sort(order[:n_rows])
    score(model, held.X.iloc[rows], held.y[rows])
    per_pass = time.perf_counter() - began
    columns = held.X.shape[1]
    repeats = IMPORTANCE_REPEATS
    while repeats > 1 and per_pass * columns * repeats > aim:
        repeats -= 1
    if per_pass * columns * repeats > aim:
        share = aim / (per_pass * columns * repeats)
        n_rows = max(min(IMPORTANCE_MIN_ROWS, n_rows), int(n_rows * share))
        # A pass does not shrink with the rows below some size (an ensemble's members each
        # featurize every column): timed again, and given up when it cannot fit the limit.
        began = time.perf_counter()
        rows = np.sort(order[:n_rows])
        score(model, held.X.iloc[rows], held.y[rows])
        needed = (time.perf_counter() - began) * columns * repeats
        if needed > limit:
            raise TimeoutError(f"shuffling {columns} columns would take about {needed:.0f} s, "
                               f"more than the {limit:.1f} s the time budget leaves it")
    rows = np.sort(order[:n_rows])
    X = held.X.iloc[rows].reset_index(drop=True)
    y = held.y[rows]
    found = permutation_importance(model, X, y, scoring=score, n_repeats=repeats,
                                   random_state=seed, n_jobs=1)
    means = pd.Series(found.importances_mean, index=[str(c) for c in X.columns])
    charts.importance = {k: float(v) for k, v in means.sort_values(ascending=False).items()}
    top = means.sort_values(ascending=False).index[:MAX_FEATURES_SHOWN][::-1]
    spread = pd.Series(found.importances_std, index=means.index)[top]
    figure, axes = plt.subplots(figsize=(7.5, 1.6 + 0.3 * len(top)))
    axes.barh(list(top), means[top], xerr=spread if repeats > 1 else None, color="tab:blue",
              alpha=0.8)
    axes.axvline(0, color="grey", linestyle="--", linewidth=1)
    axes.set(xlabel=f"Drop in {metric.name} when the column is shuffled\n"
             f"({len(rows)} rows, {repeats} repeat{'s' if repeats > 1 else ''}"
             f"{', bars: one standard deviation' if repeats > 1 else ''})", ylabel="Input column")
    return figure


def _study(trace: SearchTrace, metric: Metric) -> Any:
    """An in-memory Optuna study rebuilt from the results, independent of the search storage."""
    import optuna
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    from tasks.spaces import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if metric.greater_is_better else "minimize")
    families = CategoricalDistribution(list(trace.families))
    for result in trace.results:
        c = result.candidate
        space = load_space(c.family).params
        params = {"family": c.family, **{f"{c.family}__{k}": v for k, v in c.params.items()
                                         if k in space}}
        dists = {"family": families, **{f"{c.family}__{k}": space[k] for k in c.params if k in space}}
        value = result.metrics.get(metric.name) if result.ok else None
        try:
            study.add_trial(create_trial(
                params=params, distributions=dists, value=value,
                state=TrialState.COMPLETE if value is not None else TrialState.FAIL,
            ))
        except ValueError:  # a value outside today's space file: the trial is left out
            continue
    return study


def _history(trace: SearchTrace, metric: Metric) -> Any:
    from optuna.visualization.matplotlib import plot_optimization_history

    ax = plot_optimization_history(_study(trace, metric), target_name=metric.name)
    ax.set_title("")
    ax.set_title("", loc="left")
    ax.set(xlabel="Trial number", ylabel=metric.name)
    ax.legend(["trial", "best so far"], loc="best", fontsize=8)
    ax.figure.set_size_inches(7.0, 5.0)
    return ax.figure


def _best_vs_time(trace: SearchTrace, metric: Metric) -> Any:
    points = [(t, r.metrics[metric.name]) for t, r in zip(trace.elapsed, trace.results, strict=True)
              if r.ok and metric.name in r.metrics]
    if not points:
        raise ValueError("no completed trial")
    times, scores = map(np.asarray, zip(*points, strict=True))
    best = (np.maximum if metric.greater_is_better else np.minimum).accumulate(scores)
    figure, axes = _figure()
    ax = axes[0, 0]
    ax.scatter(times, scores, s=14, alpha=0.6, label="trial")
    ax.step(times, best, where="post", color="tab:red", label="best so far")
    ax.set(xlabel="Elapsed seconds since the run started", ylabel=metric.name)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure


def _param_importance(trace: SearchTrace, metric: Metric) -> Any:
    from optuna.importance import get_param_importances
    from optuna.visualization.matplotlib import plot_param_importances

    study = _study(trace, metric)
    done = [t for t in study.trials if t.value is not None]
    if len(done) < 2:
        raise ValueError(f"needs at least 2 completed trials, found {len(done)}")
    importances = get_param_importances(study)  # most important first
    top = list(importances)[:MAX_FEATURES_SHOWN]
    ax = plot_param_importances(study, params=top, target_name=metric.name)
    ax.set_title("")
    ax.set_title("", loc="left")
    ax.set(xlabel=f"Importance for {metric.name}", ylabel="Hyperparameter (family__name)")
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    figure = ax.figure
    figure.set_size_inches(7.5, max(3.5, 0.35 * len(ax.get_yticklabels()) + 1.5))
    return figure
