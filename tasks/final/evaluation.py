"""Score the final model on rows it never saw.

The held-out predictions feed the charts and the champion/challenger comparison: the refit
model's predictions of the test set when there is one, else the chosen candidate's validation (or
out-of-fold) predictions, made by models that did not see those rows. The refit model itself has
seen the validation rows, so it is never scored on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tasks.final.cost import measure_cost
from tasks.metrics import score_all
from tasks.models.predict import class_codes, predict_scores

if TYPE_CHECKING:
    import pandas as pd

    from tasks.data.sets import HeldOut, SearchData
    from tasks.final.choice import Choice
    from tasks.final.cost import InferenceCost
    from tasks.types import Array, Estimator

__all__ = ["Evaluation", "HeldOutPredictions", "evaluate_model"]


@dataclass(frozen=True, eq=False)
class HeldOutPredictions:
    """Rows the predicting model never saw, with their truth and its predictions."""

    basis: str  # "test" or "validation"
    X: pd.DataFrame  # raw input rows
    y: Array  # class codes (index into classes) or values
    pred: Array  # class probabilities in classes order, or values
    weights: Array | None
    classes: Array | None
    y_range: float
    positive: int
    threshold: float | None = None  # the predicting model's decision threshold (Choice)

    @property
    def labels(self) -> Array | None:
        return None if self.classes is None else self.classes[self.y]

    @property
    def predicted(self) -> Array | None:
        """The predicted class codes, as the model's predict labels them."""
        return None if self.classes is None else class_codes(self.pred, self.threshold,
                                                             self.positive)


@dataclass(frozen=True)
class Evaluation:
    validation: dict[str, float]  # of the chosen candidate, on validation or out-of-fold rows
    test: dict[str, float] | None  # of the refit model, on the test set when there is one
    held_out: HeldOutPredictions | None = None
    cost: InferenceCost | None = None  # of the refit model, measured on the held-out rows

    @property
    def final(self) -> dict[str, float]:
        """The metrics of the held-out predictions: test when there is a test set."""
        return self.test if self.test is not None else self.validation


def evaluate_model(
    model: Estimator, choice: Choice, data: SearchData, test: HeldOut | None, n_jobs: int = 1
) -> Evaluation:
    """`model` is the refit pipeline: scored on the test set when there is one. Labels are read
    at the choice's decision threshold, as the model's predict reads them. Its inference cost is
    timed with `n_jobs` threads (a trial's, so the leaderboard's times compare)."""
    if test is None:
        rows = data.valid_rows
        held = _held_out("validation", data.X.iloc[rows], data.y_valid, choice.predictions,
                         data.weights_valid, data, choice)
        return Evaluation(choice.metrics, None, held,
                          measure_cost(model, held.X, data.classes, n_jobs))
    pred = predict_scores(model, test.X, data.classes)
    y = np.searchsorted(data.classes, test.y) if data.classes is not None else test.y
    test_metrics = score_all(data.task, y, pred, test.weights, data.y_range, data.positive,
                             choice.threshold)
    held = _held_out("test", test.X, y, pred, test.weights, data, choice)
    return Evaluation(choice.metrics, test_metrics, held,
                      measure_cost(model, test.X, data.classes, n_jobs))


def _held_out(
    basis: str, X: pd.DataFrame, y: Array, pred: Array, weights: Array | None, data: SearchData,
    choice: Choice,
) -> HeldOutPredictions:
    """The rows with what every basis shares: the data's classes, y_range and positive class,
    and the choice's threshold."""
    return HeldOutPredictions(basis, X, y, pred, weights, classes=data.classes,
                              y_range=data.y_range, positive=data.positive,
                              threshold=choice.threshold)
