"""The classifier side shared by the wrappers that fit `estimator_` on their own view of the rows
(`_model_input`: category codes declared, engineered columns appended): labels and probabilities
read through that same view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import ClassifierMixin

if TYPE_CHECKING:
    from tasks.types import Array, Rows

__all__ = ["InputClassifierMixin"]


# scikit-learn ships no types, so its base classes are Any to mypy: subclassing them is the point.
class InputClassifierMixin(ClassifierMixin):  # type: ignore[misc]
    classes_: Array
    estimator_: Any

    def _model_input(self, X: Rows) -> Rows:
        raise NotImplementedError

    def fit(self, X: Rows, y: Array, **fit_params: object) -> InputClassifierMixin:
        super().fit(X, y, **fit_params)
        self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict(self, X: Rows) -> Array:
        labels: Array = self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return labels

    def predict_proba(self, X: Rows) -> Array:
        proba: Array = self.estimator_.predict_proba(self._model_input(X))
        return proba
