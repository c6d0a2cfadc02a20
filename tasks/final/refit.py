"""Refit the chosen model on all training rows: one pipeline, or the ensemble of its members."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from tasks.final.choice import STACK
from tasks.models.ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    StackEnsembleClassifier,
    StackEnsembleRegressor,
)
from tasks.models.pipeline import build_pipeline, fit_pipeline

if TYPE_CHECKING:
    from tasks.data.sets import SearchData
    from tasks.final.choice import Choice
    from tasks.search.candidates import TrialResult, TrialSettings
    from tasks.types import Estimator

__all__ = ["refit_model"]


def refit_model(choice: Choice, data: SearchData, settings: TrialSettings) -> Pipeline:
    def pipeline(member: TrialResult) -> Pipeline:
        c = member.candidate
        return build_pipeline(
            c.family, member.final_params, task=data.task, roles=settings.roles, seed=settings.seed,
            n_jobs=settings.n_jobs, featurize=settings.featurize, onnx=settings.onnx,
            n_classes=0 if data.classes is None else len(data.classes),
            n_rows=len(data.refit_rows),
        )

    members = [(m.candidate.label, pipeline(m)) for m in choice.members]
    if choice.is_ensemble and choice.kind == STACK:
        meta = FrozenEstimator(choice.meta)  # fitted on the members' out-of-fold predictions
        model = Pipeline([("model", _stack(members, meta, data, choice))])
    elif choice.is_ensemble and data.task == "regression":
        model = Pipeline([("model", EnsembleRegressor(members, list(choice.weights)))])
    elif choice.is_ensemble or choice.temperature != 1.0 or choice.threshold is not None:
        # A single model at a temperature or a threshold: a one-member ensemble carries them.
        model = Pipeline([("model", EnsembleClassifier(
            members, list(choice.weights), choice.temperature, choice.threshold,
            _positive_label(choice, data)))])
    else:
        model = pipeline(choice.members[0])
    return fit_pipeline(model, data, data.refit_rows, settings.n_jobs)


def _positive_label(choice: Choice, data: SearchData) -> object:
    """The label whose probability the choice's decision threshold is on (None: no threshold)."""
    if choice.threshold is None or data.classes is None:
        return None
    return data.classes[data.positive]


def _stack(
    members: list[tuple[str, Pipeline]], meta: Estimator, data: SearchData, choice: Choice
) -> StackEnsembleClassifier | StackEnsembleRegressor:
    if data.task == "classification":
        assert data.classes is not None  # a classification's data has its labels
        return StackEnsembleClassifier(members, meta, data.classes, choice.temperature,
                                       choice.threshold, _positive_label(choice, data))
    return StackEnsembleRegressor(members, meta)
