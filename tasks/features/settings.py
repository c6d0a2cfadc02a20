"""The featurization knob: auto, off, or auto with per-column overrides (Azure's
FeaturizationConfig), validated with sentences a user can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["ColumnOverride", "FeaturizationSettings", "parse_featurization", "ColumnRole",
           "Imputer"]

ColumnRole = Literal["numeric", "categorical", "text", "datetime", "drop"]
Imputer = Literal["mean", "median", "most_frequent", "constant"]


class ColumnOverride(BaseModel):
    """What the user says about one column, instead of what featurization would detect."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: ColumnRole | None = Field(default=None, description="Force the column's role.")
    imputer: Imputer | None = Field(
        default=None, description="How the column's missing values are filled."
    )


class FeaturizationSettings(BaseModel):
    """Automatic featurization with per-column overrides (Azure's FeaturizationConfig)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column_overrides: dict[str, ColumnOverride] = Field(
        default_factory=dict, description="Column name -> {role: ..., imputer: ...}."
    )


def parse_featurization(value: object) -> str | FeaturizationSettings:
    """'auto', 'off' or the overrides mapping; anything else is one sentence naming the fix."""
    if isinstance(value, FeaturizationSettings):
        return value
    if value in ("auto", "off"):
        return str(value)  # the text itself: equal to 'auto' or 'off'
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"featurization must be 'auto', 'off' or a mapping like "
            f"{{'column_overrides': {{'zip': {{'role': 'categorical'}}}}}}, got {value!r}"
        )
    try:
        return FeaturizationSettings.model_validate(value)
    except ValidationError as exc:
        raise ConfigError(_override_sentence(exc.errors()[0])) from None


def _override_sentence(err: ErrorDetails) -> str:
    loc = [str(part) for part in err["loc"]]
    if len(loc) == 3 and loc[0] == "column_overrides":
        column, knob = loc[1], loc[2]
        valid = {
            "role": ", ".join(get_args(ColumnRole)),
            "imputer": ", ".join(get_args(Imputer)),
        }.get(knob)
        if valid is not None:
            return (
                f"featurization override of column '{column}' has {knob} {err['input']!r}; "
                f"valid {knob}s are: {valid}"
            )
        return (
            f"featurization override of column '{column}' has unknown setting '{knob}'; "
            "valid settings are: role, imputer"
        )
    if len(loc) == 2 and loc[0] == "column_overrides":
        return (
            f"featurization override of column '{loc[1]}' must be a mapping like "
            f"{{'role': 'categorical'}}, got {err['input']!r}"
        )
    if len(loc) == 1 and err["type"] == "extra_forbidden":
        return f"featurization has unknown setting '{loc[0]}'; the only setting is column_overrides"
    where = ".".join(loc)
    return f"featurization {where} is invalid: {err['msg']} (got {err['input']!r})"
