"""What each feature column is (its role), decided once from the training rows; the user's
per-column overrides win."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pandas as pd

from tasks.errors import ConfigError, DataError
from tasks.features.columns import integral, is_row_count, looks_like_dates, mean_words
from tasks.features.settings import ColumnOverride, FeaturizationSettings, parse_featurization

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ColumnRoles", "detect_roles", "IMPUTERS", "MAX_ONEHOT_LEVELS"]

# Categorical columns with more levels than this are target-encoded instead of one-hot encoded;
# a column with this many distinct values or fewer is never an identifier or free text.
MAX_ONEHOT_LEVELS = 30
# A text column whose values are this unique (per row) is an identifier, unless it is free text.
IDENTIFIER_UNIQUE_RATIO = 0.5
# Free text has this many words per value on average: sentences, and people's names.
TEXT_MIN_WORDS = 3.0
# Whole-number columns with 3 to this many values are also one-hot encoded, by default for
# scaled models: a linear model cannot bend the effect of 1, 2, 3 children (weekday, weather
# code); trees split on any threshold already and would only get slower. Distance models lose
# by it (each such column counts twice in the distance, measured on KNN): build theirs with
# onehot_discrete=False. Two values add nothing to the 0/1 number itself.
MAX_DISCRETE_LEVELS = 10

IMPUTERS = {  # role -> the imputers that apply to it, the default first
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

    def portable(self) -> ColumnRoles:
        """The roles ONNX export converts: free text as a category of many levels
        (target-encoded) instead of TF-IDF; dates dropped, saying why (their calendar parts
        have no converter)."""
        why = ("a date: its calendar parts do not export to ONNX (enable_onnx_compatible_models);"
               " give it as a number, e.g. days since an origin, to use it")
        return replace(self, datetime=(), text=(),
                       high_cardinality=self.high_cardinality + self.text,
                       dropped={**self.dropped, **dict.fromkeys(self.datetime, why)})

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



def detect_roles(
    frame: pd.DataFrame,
    overrides: Mapping[str, ColumnOverride | Mapping[str, object]] | None = None,
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
    overrides: Mapping[str, ColumnOverride | Mapping[str, object]], frame: pd.DataFrame
) -> dict[str, ColumnOverride]:
    # The same sentences as the config for the same mistakes (ConfigError), then the columns.
    settings = parse_featurization({"column_overrides": dict(overrides)})
    assert isinstance(settings, FeaturizationSettings)  # a mapping parses to settings or raises
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
    valid = IMPUTERS.get(role, ())
    if imputer not in valid:
        fix = (f"use one of: {', '.join(valid)}" if valid
               else "set its role to numeric, categorical or datetime as well")
        raise ConfigError(
            f"featurization override of column '{name}' asks for imputer '{imputer}', "
            f"which does not apply to a {role} column; {fix}"
        )
    return imputer
