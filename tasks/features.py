"""Column roles and the preprocessing that turns raw rows into model input (Azure's featurization).

The preprocessing is part of every candidate pipeline, so the pickled model takes raw rows:
unseen categories and words, new missing values, unparseable dates, extra, reordered and
absent-but-unused columns all work at predict time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from tasks.columns import (
    DatetimeFeatures,
    TextTfidf,
    category_text,
    integral,
    is_row_count,
    looks_like_dates,
    mean_words,
    numeric_block,
    numeric_frame,
    onehot_block,
    target_block,
)
from tasks.config import ColumnOverride, FeaturizationSettings, parse_featurization
from tasks.errors import ConfigError, DataError

__all__ = [
    "ColumnRoles",
    "detect_roles",
    "build_preprocessor",
    "required_columns",
    "featurization_overrides",
    "featurization_enabled",
]

# Categorical columns with more levels than this are target-encoded instead of one-hot encoded;
# a column with this many distinct values or fewer is never an identifier or free text.
MAX_ONEHOT_LEVELS = 30
# A text column whose values are this unique (per row) is an identifier, unless it is free text.
IDENTIFIER_UNIQUE_RATIO = 0.5
# Free text has this many words per value on average: sentences, and people's names.
TEXT_MIN_WORDS = 3.0
# TF-IDF width per text column: the output is dense (histogram boosting takes no sparse input).
TEXT_MAX_FEATURES = 200
# Whole-number columns with 3 to this many values are also one-hot encoded, by default for
# scaled models: a linear model cannot bend the effect of 1, 2, 3 children (weekday, weather
# code); trees split on any threshold already and would only get slower. Distance models lose
# by it (each such column counts twice in the distance, measured on KNN): build theirs with
# onehot_discrete=False. Two values add nothing to the 0/1 number itself.
MAX_DISCRETE_LEVELS = 10

_IMPUTERS = {  # role -> the imputers that apply to it, the default first
    "numeric": ("median", "mean", "most_frequent", "constant"),
    "datetime": ("median", "mean", "most_frequent", "constant"),
    "categorical": ("constant", "most_frequent"),
    "high_cardinality": ("constant", "most_frequent"),
    "boolean": ("constant", "most_frequent"),
}


@dataclass(frozen=True)
class ColumnRoles:
    """What each feature column is, decided once from the training rows."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()  # one-hot encoded
    high_cardinality: tuple[str, ...] = ()  # target-encoded
    boolean: tuple[str, ...] = ()  # one-hot encoded, like categorical
    datetime: tuple[str, ...] = ()  # expanded into calendar parts
    text: tuple[str, ...] = ()  # TF-IDF of words and word pairs
    discrete: tuple[str, ...] = ()  # numeric columns also one-hot encoded for scaled models
    imputers: dict[str, str] = field(default_factory=dict)  # column -> imputer the user chose
    dropped: dict[str, str] = field(default_factory=dict)  # column -> reason

    @property
    def used(self) -> tuple[str, ...]:
        return (self.numeric + self.categorical + self.high_cardinality + self.boolean
                + self.datetime + self.text)

    def summary(self) -> dict[str, list[str]]:
        return {
            "numeric": list(self.numeric),
            "discrete (numeric, also one-hot for linear models)": list(self.discrete),
            "categorical": list(self.categorical),
            "boolean": list(self.boolean),
            "high_cardinality": list(self.high_cardinality),
            "datetime": list(self.datetime),
            "text": list(self.text),
            "imputer overrides": [f"{c} ({how})" for c, how in self.imputers.items()],
            "dropped": [f"{c} ({why})" for c, why in self.dropped.items()],
        }


def featurization_overrides(config: Any) -> dict[str, ColumnOverride] | None:
    """The per-column overrides of an AutoMLConfig, for detect_roles; None when there are none."""
    settings = config.featurization
    if isinstance(settings, FeaturizationSettings) and settings.column_overrides:
        return dict(settings.column_overrides)
    return None


def featurization_enabled(config: Any) -> bool:
    """build_preprocessor's `featurize`: "auto" and a mapping of overrides featurize, "off" not."""
    return config.featurization != "off"


def detect_roles(
    frame: pd.DataFrame, overrides: Mapping[str, ColumnOverride | Mapping[str, Any]] | None = None
) -> ColumnRoles:
    """Decide once, from the training rows, what each feature column is; overrides win."""
    checked = _check_overrides(overrides or {}, frame)
    roles: dict[str, list[str]] = {k: [] for k in (
        "numeric", "categorical", "high_cardinality", "boolean", "datetime", "text", "discrete")}
    dropped: dict[str, str] = {}
    imputers: dict[str, str] = {}
    for name in frame.columns:
        col, override = frame[name], checked.get(name, ColumnOverride())
        role = _forced(col, override.role) if override.role else _detect(col, len(frame))
        if role in roles:
            roles[role].append(name)
            if role == "numeric" and _discrete(col):
                roles["discrete"].append(name)
        else:
            dropped[name] = "dropped by override" if override.role == "drop" else role
        if override.imputer is not None:
            imputers[name] = _check_imputer(name, role, override.imputer)
    found = {k: tuple(v) for k, v in roles.items()}
    return ColumnRoles(**found, imputers=imputers, dropped=dropped)


def _detect(col: pd.Series, n_rows: int) -> str:
    """A role of ColumnRoles, or the reason the column is dropped; the first rule that fits."""
    if col.isna().all():
        return "all missing"
    n_unique = col.nunique(dropna=True)
    if n_unique <= 1:
        return "constant"
    if pd.api.types.is_bool_dtype(col) or pd.api.types.infer_dtype(col, skipna=True) == "boolean":
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "datetime"
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        row_id = n_unique > MAX_ONEHOT_LEVELS and is_row_count(col)
        return "identifier-like" if row_id else "numeric"
    if looks_like_dates(col):
        return "datetime"
    if n_unique > MAX_ONEHOT_LEVELS and mean_words(col) >= TEXT_MIN_WORDS:
        return "text"  # before the identifier rule: sentences and names are unique too
    if n_unique > max(MAX_ONEHOT_LEVELS, IDENTIFIER_UNIQUE_RATIO * n_rows):
        return "identifier-like"
    return "high_cardinality" if n_unique > MAX_ONEHOT_LEVELS else "categorical"


def _forced(col: pd.Series, role: str) -> str:
    if role == "categorical" and col.nunique(dropna=True) > MAX_ONEHOT_LEVELS:
        return "high_cardinality"  # one-hot of hundreds of zip codes would swamp the model
    return role


def _discrete(col: pd.Series) -> bool:
    return integral(col) and 3 <= col.nunique(dropna=True) <= MAX_DISCRETE_LEVELS


def _check_overrides(
    overrides: Mapping[str, ColumnOverride | Mapping[str, Any]], frame: pd.DataFrame
) -> dict[str, ColumnOverride]:
    # The same sentences as the config for the same mistakes (ConfigError), then the columns.
    parsed = parse_featurization({"column_overrides": dict(overrides)})
    settings = cast(FeaturizationSettings, parsed)
    for name in settings.column_overrides:
        if name not in frame.columns:
            columns = ", ".join(map(str, frame.columns[:30]))
            more = f" (and {len(frame.columns) - 30} more)" if len(frame.columns) > 30 else ""
            raise DataError(
                f"featurization override names column '{name}', which is not in the training "
                f"data; columns are: {columns}{more}"
            )
    return dict(settings.column_overrides)


def _check_imputer(name: str, role: str, imputer: str) -> str:
    valid = _IMPUTERS.get(role, ())
    if imputer not in valid:
        fix = (f"use one of: {', '.join(valid)}" if valid
               else "set its role to numeric, categorical or datetime as well")
        raise ConfigError(
            f"featurization override of column '{name}' asks for imputer '{imputer}', "
            f"which does not apply to a {role} column; {fix}"
        )
    return imputer


def build_preprocessor(
    roles: ColumnRoles,
    *,
    scaling: str | None,
    task: str,
    featurize: bool = True,
    onehot_discrete: bool | None = None,
) -> ColumnTransformer:
    """Impute, encode, expand dates, vectorise text and, when asked, scale; other columns are
    ignored. The output is dense, numeric and without NaN.

    scaling: None (trees), "standard" (zero mean, unit variance: linear, kernel and distance
    models) or "minmax" (every output in [0, 1], for models that need non-negative inputs).
    onehot_discrete: one-hot roles.discrete besides their value; None: when scaling is set.
    """
    if scaling not in (None, "standard", "minmax"):
        raise ValueError(f"scaling must be None, 'standard' or 'minmax', got {scaling!r}")
    if not featurize:
        return _as_given(roles)
    parts: list[tuple[str, Any, list[str]]] = []
    for how, names in _by_imputer(roles.numeric, roles, "numeric"):
        head = FunctionTransformer(numeric_frame, feature_names_out="one-to-one")
        parts.append((_block("numeric", how), numeric_block(head, how, scaling), names))
    if onehot_discrete is None:
        onehot_discrete = scaling is not None
    if onehot_discrete and roles.discrete:
        parts.append(("discrete", onehot_block("constant"), list(roles.discrete)))
    for how, names in _by_imputer(roles.categorical + roles.boolean, roles, "categorical"):
        parts.append((_block("categorical", how), onehot_block(how), names))
    for how, names in _by_imputer(roles.high_cardinality, roles, "high_cardinality"):
        parts.append((_block("high_cardinality", how), target_block(task, how, scaling), names))
    for how, names in _by_imputer(roles.datetime, roles, "datetime"):
        # DatetimeFeatures flags a missing date once, not once per calendar part.
        expand = numeric_block(DatetimeFeatures(), how, scaling, indicator=False)
        parts.append((_block("datetime", how), expand, names))
    # TF-IDF rows have unit length and values in [0, 1] already: no scaling for any model.
    parts.extend((f"text{i}", TextTfidf(TEXT_MAX_FEATURES), [c]) for i, c in enumerate(roles.text))
    return ColumnTransformer(parts, sparse_threshold=0.0, verbose_feature_names_out=False)


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
    default = _IMPUTERS[role][0]
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(roles.imputers.get(name, default), []).append(name)
    return sorted(groups.items(), key=lambda item: item[0] != default)


def _block(kind: str, how: str) -> str:
    return kind if how == _IMPUTERS[kind][0] else f"{kind}_{how}"


# Models pickled before tasks.columns existed reference this name.
_as_text = category_text


def required_columns(pipeline: Any) -> list[str]:
    """The input columns a fitted pipeline (or an ensemble of pipelines) reads, in input order.

    Columns the training data had but featurization dropped are not required at predict time.
    """
    used = set(_read_columns(pipeline))
    order = list(getattr(pipeline, "feature_names_in_", ()))
    return [c for c in order if c in used] + sorted(used.difference(order), key=str)


def _read_columns(obj: Any) -> Iterator[Any]:
    if isinstance(obj, ColumnTransformer):
        names = getattr(obj, "feature_names_in_", None)
        for _, transformer, columns in getattr(obj, "transformers_", obj.transformers):
            if isinstance(transformer, str) and transformer == "drop":
                continue
            for column in np.atleast_1d(np.asarray(columns, dtype=object)):
                is_position = isinstance(column, (int, np.integer)) and names is not None
                yield names[column] if is_position else column
    elif isinstance(obj, Pipeline):
        for _, step in obj.steps:
            yield from _read_columns(step)
    else:  # ensembles of whole pipelines, fitted or not
        for member in getattr(obj, "estimators_", None) or getattr(obj, "estimators", None) or ():
            yield from _read_columns(member[1] if isinstance(member, tuple) else member)
