"""Charts of the final model on held-out rows: classification curves, regression residuals.

Held-out rows are the test set when there is one, else the validation (out-of-fold) rows with
the chosen candidate's predictions of them (tasks.final.evaluation.HeldOutPredictions).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display, safe in worker threads

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    PrecisionRecallDisplay,
    PredictionErrorDisplay,
    RocCurveDisplay,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tasks.final.evaluation import HeldOutPredictions
    from tasks.types import Array

# plt: pyplot with the Agg backend chosen above, for the other chart modules.
__all__ = ["new_figure", "confusion", "roc", "precision_recall", "calibration", "gains",
           "predicted_vs_true", "residual_histogram", "residuals_vs_predicted", "MAX_CLASSES",
           "plt"]

MAX_CLASSES = 10  # one-vs-rest curves for at most this many classes (the most frequent)


def new_figure(ncols: int = 1, width: float = 6.0) -> tuple[Figure, Array]:
    """A figure and its axes as a 1 x ncols array."""
    return plt.subplots(1, ncols, figsize=(width * ncols, 5.0), squeeze=False)


def _classes(held: HeldOutPredictions) -> Array:
    """The class labels: these charts are drawn for classification only."""
    assert held.classes is not None
    return held.classes


def _shown_classes(held: HeldOutPredictions) -> list[int]:
    """Binary: the positive class alone. Multiclass: the most frequent classes, capped."""
    k = len(_classes(held))
    if k == 2:
        return [held.positive]
    counts = np.bincount(held.y, minlength=k)
    return [int(i) for i in np.argsort(-counts, kind="stable")[:MAX_CLASSES] if counts[i] > 0]


def confusion(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure(2, 5.5)
    labels = [str(c) for c in _classes(held)]
    truth, guess = held.y, held.predicted  # at the model's decision threshold, if any
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


def _one_vs_rest(held: HeldOutPredictions, draw: Callable[..., object], ax: Axes,
                 **kwargs: object) -> None:
    """One curve per shown class; draw is a scikit-learn display's from_predictions."""
    classes = _classes(held)
    for i in _shown_classes(held):
        draw(held.y == i, held.pred[:, i], name=f"class {classes[i]}", ax=ax, **kwargs)


def roc(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    ax: Axes = axes[0, 0]
    _one_vs_rest(held, RocCurveDisplay.from_predictions, ax, plot_chance_level=False)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def precision_recall(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    ax: Axes = axes[0, 0]
    _one_vs_rest(held, PrecisionRecallDisplay.from_predictions, ax)
    ax.set(xlabel="Recall", ylabel="Precision", ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return figure


def calibration(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    ax: Axes = axes[0, 0]
    bins = 10 if len(held.y) >= 200 else 5
    classes = _classes(held)
    for n, i in enumerate(_shown_classes(held)):
        CalibrationDisplay.from_predictions(held.y == i, held.pred[:, i], n_bins=bins,
                                            strategy="quantile", name=f"class {classes[i]}",
                                            ax=ax, ref_line=n == 0)
    ax.set(xlabel="Mean predicted probability", ylabel="Fraction of positives")
    ax.legend(loc="upper left", fontsize=8)
    return figure


def gains(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure(2, 5.5)
    gains_ax: Axes = axes[0, 0]
    lift_ax: Axes = axes[0, 1]
    classes = _classes(held)
    for i in _shown_classes(held):
        order = np.argsort(-held.pred[:, i], kind="stable")
        hits = (held.y[order] == i).astype(float)
        if hits.sum() == 0:
            continue
        share = np.arange(1, len(hits) + 1) / len(hits)
        gains = np.cumsum(hits) / hits.sum()
        label = f"class {classes[i]}"
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


def predicted_vs_true(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    PredictionErrorDisplay.from_predictions(held.y, held.pred, kind="actual_vs_predicted",
                                            ax=axes[0, 0], scatter_kwargs={"alpha": 0.5})
    axes[0, 0].set(xlabel="Predicted value", ylabel="True value")
    return figure


def residual_histogram(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    ax: Axes = axes[0, 0]
    residuals = held.y - held.pred
    ax.hist(residuals, bins=min(50, max(10, len(residuals) // 10)), color="tab:blue", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1)
    ax.set(xlabel="Residual (true - predicted)", ylabel="Rows")
    return figure


def residuals_vs_predicted(held: HeldOutPredictions) -> Figure:
    figure, axes = new_figure()
    PredictionErrorDisplay.from_predictions(held.y, held.pred, kind="residual_vs_predicted",
                                            ax=axes[0, 0], scatter_kwargs={"alpha": 0.5})
    axes[0, 0].set(xlabel="Predicted value", ylabel="Residual (true - predicted)")
    return figure
