"""Column roles and the preprocessing that turns raw rows into model input.

The preprocessing is part of every candidate pipeline, so the pickled model takes raw rows:
unseen categories, new missing values and extra columns all work at predict time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
    TargetEncoder,
)

__all__ = ["ColumnRoles", "detect_roles", "build_preprocessor"]

# Categorical columns with more levels than this are target-encoded instead of one-hot encoded.
MAX_ONEHOT_LEVELS = 30
# A non-numeric column whose values are this unique is an identifier or free text, not a category.
IDENTIFIER_UNIQUE_RATIO = 0.5


@dataclass(frozen=True)
class ColumnRoles:
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    high_cardinality: tuple[str, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def used(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.high_cardinality

    def summary(self) -> dict[str, list[str]]:
        return {
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "high_cardinality": list(self.high_cardinality),
            "dropped": [f"{c} ({why})" for c, why in self.dropped.items()],
        }


def detect_roles(frame: pd.DataFrame) -> ColumnRoles:
    """Decide once, from the training rows, what each feature column is."""
    numeric, categorical, high, dropped = [], [], [], {}
    n_rows = len(frame)
    for name in frame.columns:
        col = frame[name]
        n_unique = col.nunique(dropna=True)
        if col.isna().all():
            dropped[name] = "all missing"
        elif n_unique <= 1:
            dropped[name] = "constant"
        elif pd.api.types.is_bool_dtype(col):
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(col):
            numeric.append(name)
        elif n_unique > max(MAX_ONEHOT_LEVELS, IDENTIFIER_UNIQUE_RATIO * n_rows):
            dropped[name] = "identifier-like"
        elif n_unique > MAX_ONEHOT_LEVELS:
            high.append(name)
        else:
            categorical.append(name)
    return ColumnRoles(tuple(numeric), tuple(categorical), tuple(high), dropped)


def build_preprocessor(
    roles: ColumnRoles, *, scaling: str | None, task: str, featurize: bool = True
) -> ColumnTransformer:
    """Impute, encode and (for linear and distance models) scale; unknown columns are dropped.

    scaling: None, "standard" (zero mean, unit variance) or "minmax" (into [0, 1]).
    """
    scale = scaling is not None
    if not featurize:
        return ColumnTransformer([("numeric", "passthrough", list(roles.numeric))])
    numeric_steps = [SimpleImputer(strategy="median", add_indicator=True)]
    if scale:
        numeric_steps.append(StandardScaler())
    parts = [("numeric", make_pipeline(*numeric_steps), list(roles.numeric))]
    if roles.categorical:
        parts.append(("categorical", _onehot(), list(roles.categorical)))
    if roles.high_cardinality:
        parts.append(("high_cardinality", _target_encoder(task, scale), list(roles.high_cardinality)))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    # One type for every categorical value (bools, ints, strings alike); missing stays NaN.
    return frame.astype("str").astype(object)


def _onehot() -> Pipeline:
    return make_pipeline(
        FunctionTransformer(_as_text, feature_names_out="one-to-one"),
        SimpleImputer(strategy="constant", fill_value="missing"),
        OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False
        ),
    )


def _target_encoder(task: str, scale: bool) -> Pipeline:
    steps = [
        FunctionTransformer(_as_text, feature_names_out="one-to-one"),
        SimpleImputer(strategy="constant", fill_value="missing"),
        TargetEncoder(target_type="continuous" if task == "regression" else "auto"),
    ]
    if scale:
        steps.append(StandardScaler())
    return make_pipeline(*steps)
