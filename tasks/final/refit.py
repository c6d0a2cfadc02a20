"""Refit the chosen model on all training rows: one pipeline, or the ensemble of its members."""

from __future__ import annotations

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from tasks.data.sets import SearchData
from tasks.final.choice import STACK, Choice
from tasks.models.ensembles import (
    EnsembleClassifier,
    EnsembleRegressor,
    StackEnsembleClassifier,
    StackEnsembleRegressor,
)
from tasks.models.pipeline import build_pipeline, fit_pipeline
from tasks.search.candidates import TrialSettings

__all__ = ["refit_model"]


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
