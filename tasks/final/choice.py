"""The final model before refitting: one trial, or an ensemble of trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tasks.search.candidates import TrialResult

__all__ = ["Choice", "SINGLE", "VOTING", "STACK"]

SINGLE, VOTING, STACK = "single", "VotingEnsemble", "StackEnsemble"


@dataclass(frozen=True)
class Choice:
    """The final model before refitting: members with weights (one member: a single model),
    or members under a fitted meta-learner (a stack)."""

    members: tuple[TrialResult, ...]
    weights: tuple[float, ...]
    metrics: dict[str, float]  # on the validation rows
    kind: str = SINGLE
    meta: Any = None  # the StackEnsemble's meta-learner, fitted on the members' predictions

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def label(self) -> str:
        if not self.is_ensemble:
            return self.members[0].candidate.label
        return f"{self.kind}(" + ", ".join(m.candidate.label for m in self.members) + ")"

    @property
    def predictions(self) -> np.ndarray:
        """The validation (or out-of-fold) predictions of the choice: the members' blend."""
        stacked = np.stack([m.predictions for m in self.members])
        return np.average(stacked, axis=0, weights=self.weights)
