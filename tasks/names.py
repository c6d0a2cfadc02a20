"""The names a user picks from in the deployment's form: Azure's metric and model family names,
offered as choices (a JSON schema enum, which Prefect draws as a dropdown and checks when a run is
created).

The enum is the form's alone: the config still takes any text here, and the code that resolves
the names (tasks.metrics.get_metric, tasks.models.families.resolve_families) keeps accepting
what it always did (any case, Azure's aliases, a plugin's families) and says in one sentence what
is wrong, once the task is known.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import WithJsonSchema

from tasks.models.families import FAMILIES

__all__ = ["METRIC_NAMES", "FAMILY_NAMES", "MetricName", "FamilyName"]

# tasks.metrics.METRICS' names, in its order: that module loads numpy, scipy and scikit-learn,
# which reading the configuration does not need (tests/test_tasks/test_names.py holds them equal).
METRIC_NAMES = (
    "AUC_weighted", "AUC_macro", "accuracy", "average_precision_score_weighted",
    "norm_macro_recall", "precision_score_weighted", "recall_score_weighted",
    "balanced_accuracy", "f1_score_macro", "f1_score_weighted", "matthews_correlation",
    "precision_score_macro", "recall_score_macro", "log_loss", "AUC_binary",
    "average_precision_score_binary", "precision_score_binary", "recall_score_binary",
    "f1_score_binary",
    "normalized_root_mean_squared_error", "root_mean_squared_error",
    "normalized_mean_absolute_error", "mean_absolute_error", "r2_score", "spearman_correlation",
    "mean_absolute_percentage_error",
)

# The built-in families (plugins register theirs when the flow starts, after this is read).
FAMILY_NAMES = tuple(family.name for family in FAMILIES.values())


def _choices(names: tuple[str, ...]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(names)})


MetricName = Annotated[str, _choices(METRIC_NAMES)]
FamilyName = Annotated[str, _choices(FAMILY_NAMES)]
