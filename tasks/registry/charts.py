"""The charts people look at after a run, as PNG files: the final model on held-out rows, and
the search itself.

Held-out rows are the test set when there is one, else the validation (out-of-fold) rows with
the chosen candidate's predictions of them (tasks.final.evaluation.HeldOutPredictions). Permutation
importance needs a fitted model: it permutes raw input columns through the whole refit
pipeline, on the same rows; so does explaining up to 200 of them (the contributions chart). A
chart that cannot be drawn is skipped with the reason, never failing the run.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from tasks.budget import IMPORTANCE_SECONDS
from tasks.registry import model_charts as charts
from tasks.registry.cohorts import cohort_chart, error_analysis
from tasks.registry.contribution_chart import contribution_chart
from tasks.registry.importance import permutation_chart
from tasks.registry.model_charts import plt
from tasks.registry.records import ChartSet
from tasks.registry.search_charts import best_vs_time, history, param_importance

if TYPE_CHECKING:
    from pathlib import Path

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.metrics import Metric
    from tasks.search.outcome import SearchOutcome
    from tasks.types import Estimator

__all__ = ["ChartSet", "draw_charts"]

log = logging.getLogger("automl")

# The contributions chart aims at this much at most (its 20 probe rows may take longer).
CONTRIBUTION_SECONDS = 3.0
_DPI = 110

# file name -> (title, what draws it)
_Plots = dict[str, tuple[str, Callable[[], Figure]]]


def draw_charts(
    folder: Path, held: HeldOutPredictions, model: Estimator, metric: Metric,
    search: SearchOutcome, seed: int = 0, importance_seconds: float = IMPORTANCE_SECONDS,
    importance_limit: float = float("inf"),
) -> ChartSet:
    """Every chart for the task, each in its own file under folder."""
    started = time.perf_counter()
    found = ChartSet(folder)
    folder.mkdir(parents=True, exist_ok=True)
    where = "test data" if held.basis == "test" else "validation data (out-of-fold)"
    plots = _model_plots(held, where)

    def importance() -> Figure:
        figure, found.importance = permutation_chart(held, model, metric, seed,
                                                     importance_seconds, importance_limit)
        return figure

    plots["permutation_importance.png"] = (f"Permutation importance, {where}", importance)

    def cohorts() -> Figure:
        # After the importance: its strongest columns are the ones cut into cohorts.
        analysis = error_analysis(held, metric, found.importance)
        found.cohorts = analysis.to_dict()
        return cohort_chart(analysis)

    plots["error_analysis.png"] = (f"Weakest cohorts, {where}", cohorts)

    def contributions() -> Figure:
        # The importance's limit (a quarter of what the budget left), and an aim of at most
        # CONTRIBUTION_SECONDS: a summary of the model's rows, not worth the importance's time.
        figure, summary = contribution_chart(held, model, seed,
                                             min(importance_seconds, CONTRIBUTION_SECONDS),
                                             importance_limit)
        found.contributions = summary.to_dict()
        return figure

    plots["contributions.png"] = (f"Contributions by column across rows, {where}",
                                  contributions)
    plots.update(_search_plots(search, metric))
    for name, (title, draw) in plots.items():
        _draw(found, name, title, draw)
    found.seconds = time.perf_counter() - started
    return found


def _model_plots(held: HeldOutPredictions, where: str) -> _Plots:
    """The final model on held-out rows: classification curves, or regression residuals."""
    if held.classes is not None:
        return {
            "confusion_matrix.png": (f"Confusion matrix, {where}", lambda: charts.confusion(held)),
            "roc.png": (f"ROC curve, {where}", lambda: charts.roc(held)),
            "precision_recall.png": (f"Precision-recall, {where}",
                                     lambda: charts.precision_recall(held)),
            "calibration.png": (f"Calibration, {where}", lambda: charts.calibration(held)),
            "lift_gains.png": (f"Cumulative gains and lift, {where}", lambda: charts.gains(held)),
        }
    return {
        "predicted_vs_true.png": (f"Predicted vs true, {where}",
                                  lambda: charts.predicted_vs_true(held)),
        "residuals_histogram.png": (f"Residuals, {where}",
                                    lambda: charts.residual_histogram(held)),
        "residuals_vs_predicted.png": (f"Residuals vs predicted, {where}",
                                       lambda: charts.residuals_vs_predicted(held)),
    }


def _search_plots(search: SearchOutcome, metric: Metric) -> _Plots:
    return {
        "optimization_history.png": ("Optuna optimization history",
                                     lambda: history(search, metric)),
        "best_so_far_time.png": (f"Best {metric.name} so far against elapsed time",
                                 lambda: best_vs_time(search, metric)),
        "param_importance.png": ("Hyperparameter importance",
                                 lambda: param_importance(search, metric)),
    }


def _draw(found: ChartSet, name: str, title: str, draw: Callable[[], Figure]) -> None:
    """One chart into found.folder / name, or the reason it was skipped."""
    began = time.perf_counter()
    try:
        # Optuna's plots switch the global style to ggplot; the context undoes that.
        with warnings.catch_warnings(), plt.style.context("default"):
            warnings.simplefilter("ignore")
            figure = draw()
            figure.suptitle(title, fontsize=11)
            figure.tight_layout()
            figure.savefig(found.folder / name, dpi=_DPI)
        found.drawn[name] = title
    except Exception as exc:  # noqa: BLE001 - a chart is never worth failing the run
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        found.skipped[name] = reason[:300]
        log.warning("chart %s skipped: %s", name, reason[:200])
    finally:
        plt.close("all")
        found.timings[name] = round(time.perf_counter() - began, 3)
