"""The final model before refitting: one trial, or an ensemble of trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tasks.models.predict import scale_probabilities

if TYPE_CHECKING:
    from tasks.search.candidates import TrialResult
    from tasks.types import Array, Estimator

__all__ = ["Choice", "SINGLE", "VOTING", "STACK", "predictions_of"]

SINGLE, VOTING, STACK = "single", "VotingEnsemble", "StackEnsemble"


@dataclass(frozen=True)
class Choice:
    """The final model before refitting: members with weights (one member: a single model),
    or members under a fitted meta-learner (a stack)."""

    members: tuple[TrialResult, ...]
    weights: tuple[float, ...]
    metrics: dict[str, float]  # on the validation rows
    kind: str = SINGLE
    # The StackEnsemble's meta-learner, fitted on the members' predictions.
    meta: Estimator | None = None
    # The StackEnsemble's own cross-validated predictions of the validation rows.
    stacked: Array | None = None
    # Class probabilities are rescaled at this temperature (tasks.final.calibration); 1: not.
    temperature: float = 1.0
    # Binary labels: the positive class where its probability reaches this (tasks.final.
    # thresholds); None: the most likely class. Predictions stay probabilities.
    threshold: float | None = None

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def label(self) -> str:
        if not self.is_ensemble:
            return self.members[0].candidate.label
        return f"{self.kind}(" + ", ".join(m.candidate.label for m in self.members) + ")"

    @property
    def predictions(self) -> Array:
        """The validation (or out-of-fold) predictions of the choice: the stack's, else the
        members' blend; at the choice's temperature."""
        if self.stacked is not None:
            blend = self.stacked
        else:
            blend = np.average(np.stack([predictions_of(m) for m in self.members]), axis=0,
                               weights=self.weights)
        return scale_probabilities(blend, self.temperature)


def predictions_of(member: TrialResult) -> Array:
    """A chosen trial's validation predictions: the pools a choice draws on keep only trials
    that made them."""
    assert member.predictions is not None, f"trial {member.candidate.label} has no predictions"
    return member.predictions
