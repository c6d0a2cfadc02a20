"""The registered model of a distributed run: an ordinary scikit-learn pipeline (the column
encoding the cluster applied, then the single-node booster), which predicts anywhere, pickled and
logged as the single-node runs' models are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder

from tasks.models.wrappers import EncodedLabelClassifier

if TYPE_CHECKING:
    from tasks.distributed.data import ClusterTable
    from tasks.types import Estimator

__all__ = ["final_pipeline"]


def final_pipeline(table: ClusterTable, model: Estimator) -> Pipeline:
    """Raw rows in, the table's own labels (or values) out."""
    if table.classes is not None:
        # Trained on label codes (the cluster encoded them): the labels come back through the
        # same wrapper single-node XGBoost trials use, fitted here from what the cluster learnt.
        encoder = LabelEncoder()
        encoder.classes_ = table.classes
        wrapped = EncodedLabelClassifier(model)
        wrapped.encoder_, wrapped.classes_, wrapped.estimator_ = encoder, table.classes, model
        model = wrapped
    return Pipeline([("prepare", table.prepare), ("model", model)])
