"""Refit the chosen model on all training rows and score it on data it has never seen.

The held-out predictions it returns feed the charts and the champion/challenger comparison:
the refit model's predictions of the test set when there is one, else the chosen candidate's
validation (or out-of-fold) predictions, made by models that did not see those rows. The refit
model itself has seen the validation rows, so it is never scored on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from sklearn.frozen import FrozenEstimator

from tasks.ensemble import STACK, Choice
from tasks.estimators import (
    EnsembleClassifier,
    EnsembleRegressor,
    StackEnsembleClassifier,
    StackEnsembleRegressor,
)
from tasks.families import build_pipeline
from tasks.metrics import score_all
from tasks.split import HeldOut, SearchData
from tasks.trial import TrialSettings, fit_pipeline, predict_scores

__all__ = ["Evaluation", "HeldOutPredictions", "refit_model", "evaluate_model"]


@dataclass(frozen=True, eq=False)
class HeldOutPredictions:
    """Rows the predicting model never saw, with their truth and its predictions."""

    basis: str  # "test" or "validation"
    X: pd.DataFrame  # raw input rows
    y: np.ndarray  # class codes (index into classes) or values
    pred: np.ndarray  # class probabilities in classes order, or values
    weights: np.ndarray | None
    classes: np.ndarray | None
    y_range: float
    positive: int

    @property
    def labels(self) -> np.ndarray | None:
        return None if self.classes is None else self.classes[self.y]


@dataclass(frozen=True)
class Evaluation:
    validation: dict[str, float]  # of the chosen candidate, on validation or out-of-fold rows
    test: dict[str, float] | None  # of the refit model, on the test set when there is one
    held_out: HeldOutPredictions | None = None

    @property
    def final(self) -> dict[str, float]:
        """The metrics of the held-out predictions: test when there is a test set."""
        return self.test if self.test is not None else self.validation


def refit_model(choice: Choice, data: SearchData, settings: TrialSettings) -> Pipeline:
    def pipeline(member) -> Pipeline:
        c = member.candidate
        return build_pipeline(
            c.family, member.final_params, task=data.task, roles=settings.roles, seed=settings.seed,
            n_jobs=settings.n_jobs, featurize=settings.featurize,
        )

    members = [(m.candidate.label, pipeline(m)) for m in choice.members]
    if choice.is_ensemble and choice.kind == STACK:
        meta = FrozenEstimator(choice.meta)  # fitted on the members' out-of-fold predictions
        stacked = (StackEnsembleClassifier(members, meta, data.classes)
                   if data.task == "classification" else StackEnsembleRegressor(members, meta))
        model = Pipeline([("model", stacked)])
    elif choice.is_ensemble:
        kind = EnsembleClassifier if data.task == "classification" else EnsembleRegressor
        model = Pipeline([("model", kind(members, list(choice.weights)))])
    else:
        model = pipeline(choice.members[0])
    return fit_pipeline(model, data, data.refit_rows, settings.n_jobs)


def evaluate_model(
    model: Pipeline, choice: Choice, data: SearchData, test: HeldOut | None
) -> Evaluation:
    shared = {"classes": data.classes, "y_range": data.y_range, "positive": data.positive}
    if test is None:
        rows = data.valid_rows
        held = HeldOutPredictions("validation", data.X.iloc[rows], data.y_valid, choice.predictions,
                                  data.weights_valid, **shared)
        return Evaluation(choice.metrics, None, held)
    pred = predict_scores(model, test.X, data.classes)
    y = np.searchsorted(data.classes, test.y) if data.classes is not None else test.y
    test_metrics = score_all(data.task, y, pred, test.weights, data.y_range, data.positive)
    held = HeldOutPredictions("test", test.X, y, pred, test.weights, **shared)
    return Evaluation(choice.metrics, test_metrics, held)
