"""Refit the chosen model on all training rows and score it on data it has never seen."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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

__all__ = ["Evaluation", "refit_model", "evaluate_model"]


@dataclass(frozen=True)
class Evaluation:
    validation: dict[str, float]  # of the chosen candidate, on validation or out-of-fold rows
    test: dict[str, float] | None  # of the refit model, on the test set when there is one


def refit_model(choice: Choice, data: SearchData, settings: TrialSettings) -> Pipeline:
    def pipeline(member) -> Pipeline:
        c = member.candidate
        return build_pipeline(
            c.family, c.params, task=data.task, roles=settings.roles, seed=settings.seed,
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
    if test is None:
        return Evaluation(choice.metrics, None)
    pred = predict_scores(model, test.X, data.classes)
    y = np.searchsorted(data.classes, test.y) if data.classes is not None else test.y
    test_metrics = score_all(data.task, y, pred, test.weights, data.y_range, data.positive)
    return Evaluation(choice.metrics, test_metrics)
