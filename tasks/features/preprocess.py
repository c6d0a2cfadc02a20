"""The preprocessing that turns raw rows into model input (Azure's featurization), built from
the column roles into every candidate pipeline, so the pickled model takes raw rows: unseen
categories and words, new missing values, unparseable dates, extra, reordered and
absent-but-unused columns all work at predict time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from tasks.errors import ConfigError
from tasks.features.columns import numeric_frame
from tasks.features.encoders import (
    DatetimeFeatures,
    TextTfidf,
    numeric_block,
    onehot_block,
    ordinal_block,
    target_block,
)
from tasks.features.roles import IMPUTERS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tasks.features.roles import ColumnRoles
    from tasks.types import Estimator, Transformer

__all__ = ["build_preprocessor", "native_columns", "required_columns", "TEXT_MAX_FEATURES"]

# TF-IDF width per text column: the output is dense (histogram boosting takes no sparse input).
TEXT_MAX_FEATURES = 200


def build_preprocessor(
    roles: ColumnRoles,
    *,
    scaling: str | None,
    task: str,
    featurize: bool = True,
    onehot_discrete: bool | None = None,
    native_categorical: bool = False,
    native_many_levels: bool = True,
) -> ColumnTransformer:
    """Impute, encode, expand dates, vectorise text and, when asked, scale; other columns are
    ignored. The output is dense, numeric and without NaN.

    scaling: None (trees), "standard" (zero mean, unit variance: linear, kernel and distance
    models) or "minmax" (every output in [0, 1], for models that need non-negative inputs).
    onehot_discrete: one-hot roles.discrete besides their value; None: when scaling is set.
    native_categorical: categorical, boolean and high-cardinality columns become integer codes,
    the first native_columns(roles) columns of the output, for a model told they are categories.
    native_many_levels: with native_categorical, the high-cardinality columns are codes too;
    else they stay target-encoded (native_columns(roles, many_levels=False) codes lead).
    """
    if scaling not in (None, "standard", "minmax"):
        raise ValueError(f"scaling must be None, 'standard' or 'minmax', got {scaling!r}")
    if not featurize:
        return _as_given(roles)
    parts: list[tuple[str, Transformer, list[str]]] = []
    if native_categorical:
        # First, so their positions are known before fitting: 0 .. native_columns(roles) - 1.
        for how, names in _by_imputer(_native(roles, native_many_levels), roles, "categorical"):
            parts.append((_block("categorical", how) + "_codes", ordinal_block(how), names))
    for how, names in _by_imputer(roles.numeric, roles, "numeric"):
        head = FunctionTransformer(numeric_frame, feature_names_out="one-to-one")
        parts.append((_block("numeric", how), numeric_block(head, how, scaling), names))
    if onehot_discrete is None:
        onehot_discrete = scaling is not None
    if onehot_discrete and roles.discrete:
        parts.append(("discrete", onehot_block("constant"), list(roles.discrete)))
    for how, names in _by_imputer(() if native_categorical else roles.categorical + roles.boolean,
                                  roles, "categorical"):
        parts.append((_block("categorical", how), onehot_block(how), names))
    target_encoded = () if native_categorical and native_many_levels else roles.high_cardinality
    for how, names in _by_imputer(target_encoded,
                                  roles, "high_cardinality"):
        parts.append((_block("high_cardinality", how), target_block(task, how, scaling), names))
    for how, names in _by_imputer(roles.datetime, roles, "datetime"):
        # DatetimeFeatures flags a missing date once, not once per calendar part.
        expand = numeric_block(DatetimeFeatures(), how, scaling, indicator=False)
        parts.append((_block("datetime", how), expand, names))
    # TF-IDF rows have unit length and values in [0, 1] already: no scaling for any model.
    parts.extend((f"text{i}", TextTfidf(TEXT_MAX_FEATURES), [c]) for i, c in enumerate(roles.text))
    return ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=False)


def _native(roles: ColumnRoles, many_levels: bool = True) -> tuple[str, ...]:
    return roles.categorical + roles.boolean + (roles.high_cardinality if many_levels else ())


def native_columns(roles: ColumnRoles, many_levels: bool = True) -> int:
    """How many category-code columns lead the output of build_preprocessor(native_categorical=
    True, native_many_levels=many_levels)."""
    return len(_native(roles, many_levels))


def _as_given(roles: ColumnRoles) -> ColumnTransformer:
    # featurization="off": the numeric columns as they are, as floats. A missing value is still
    # filled with the training median (no indicator), only so that the families that refuse NaN
    # (linear, KNN) can fit at all; a value that is present is never changed, nothing is scaled.
    if not roles.numeric:
        raise ConfigError(
            "featurization='off' uses numeric columns only and the data has none; "
            "use featurization='auto'"
        )
    steps = make_pipeline(
        FunctionTransformer(numeric_frame, feature_names_out="one-to-one"),
        SimpleImputer(strategy="median", keep_empty_features=True),
    )
    return ColumnTransformer(
        [("numeric", steps, list(roles.numeric))], sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def _by_imputer(
    names: tuple[str, ...], roles: ColumnRoles, role: str
) -> list[tuple[str, list[str]]]:
    default = IMPUTERS[role][0]
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(roles.imputers.get(name, default), []).append(name)
    return sorted(groups.items(), key=lambda item: item[0] != default)


def _block(kind: str, how: str) -> str:
    return kind if how == IMPUTERS[kind][0] else f"{kind}_{how}"


def required_columns(pipeline: Estimator) -> list[str]:
    """The input columns a fitted pipeline (or an ensemble of pipelines) reads, in input order.

    Columns the training data had but featurization dropped are not required at predict time.
    """
    used = set(_read_columns(pipeline))
    order = list(getattr(pipeline, "feature_names_in_", ()))
    return [c for c in order if c in used] + sorted(used.difference(order), key=str)


def _read_columns(obj: Estimator) -> Iterator[str]:
    if isinstance(obj, ColumnTransformer):
        names = getattr(obj, "feature_names_in_", None)
        for _, transformer, columns in getattr(obj, "transformers_", obj.transformers):
            if isinstance(transformer, str) and transformer == "drop":
                continue
            for column in np.atleast_1d(np.asarray(columns, dtype=object)):
                if isinstance(column, (int, np.integer)) and names is not None:
                    yield names[column]  # a position: the name it had at fit time
                else:
                    yield column
    elif isinstance(obj, Pipeline):
        for _, step in obj.steps:
            yield from _read_columns(step)
    else:  # ensembles of whole pipelines, fitted or not
        for member in getattr(obj, "estimators_", None) or getattr(obj, "estimators", None) or ():
            yield from _read_columns(member[1] if isinstance(member, tuple) else member)
