"""Check the configuration against the data before any training; fail with one sentence.

Every message names the thing, the rule, the value seen and the fix.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.utils.validation import has_fit_parameter

from tasks.data.columns import require_column, require_columns
from tasks.data.profile import Profile
from tasks.data.split import SplitPlan
from tasks.errors import ConfigError, DataError
from tasks.features.roles import detect_roles
from tasks.metrics import default_metric, get_metric
from tasks.models.families import FAMILIES, resolve_families, screen_families

if TYPE_CHECKING:
    from tasks.config import AutoMLConfig
    from tasks.features.roles import ColumnRoles

__all__ = ["inspect_data", "infer_task"]

log = logging.getLogger("automl")

# An integer target with at most this many distinct values is taken for classes.
MAX_INFERRED_CLASSES = 20


def infer_task(y: pd.Series) -> str:
    """Regression for real-valued targets, classification for labels and small integer sets."""
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    values = y.dropna()
    integral = bool(np.all(np.mod(values, 1) == 0))
    if integral and values.nunique() <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def inspect_data(
    config: AutoMLConfig,
    frame: pd.DataFrame,
    validation: pd.DataFrame | None = None,
    test: pd.DataFrame | None = None,
) -> Profile:
    """Everything that can be known wrong before training is raised here."""
    source = config.training_data
    if frame.empty:
        raise DataError(
            f"training data '{source}' has no rows; point training_data at a table with data"
        )
    y, task, counts = _target(config, frame, source)
    _check_positive_label(config, task, counts)
    metric = get_metric(config.primary_metric or default_metric(task), task)
    families = resolve_families(task, config.allowed_models, config.blocked_models,
                                onnx=config.enable_onnx_compatible_models)
    if config.experiment_exit_score is not None and not np.isfinite(config.experiment_exit_score):
        raise ConfigError(
            f"experiment_exit_score={config.experiment_exit_score} must be a finite number"
        )
    _check_split(config, len(frame), counts)
    features = frame.drop(columns=[c for c in (config.target, config.weight_column) if c])
    for other, name in ((validation, "validation_data"), (test, "test_data")):
        if other is not None:
            _check_other(config, other, features.columns, name, getattr(config, name))
    roles = _roles(config, features, source, task, y)
    families, skipped = _screen(config, task, families, features, roles)
    return Profile(
        task, config.task is None, metric, tuple(families), roles, len(frame), counts, skipped,
        _encoded_width(features, roles),
    )


def _target(
    config: AutoMLConfig, frame: pd.DataFrame, source: str
) -> tuple[pd.Series, str, dict[str, int]]:
    """The target column (and the weights) checked; the task, and the class counts."""
    require_columns(list(frame.columns), source, config.target, config.weight_column)
    if config.weight_column is not None:
        _check_weights(frame[config.weight_column], config.weight_column)
    y = frame[config.target]
    missing = int(y.isna().sum())
    if missing:
        raise DataError(
            f"target column '{config.target}' has {missing} missing value(s) in '{source}'; "
            "drop or fill those rows before training"
        )
    task = config.task or infer_task(y)
    counts: dict[str, int] = {}
    if task == "classification":
        counts = {str(k): int(v) for k, v in y.value_counts().items()}
        if len(counts) < 2:
            raise DataError(
                f"target column '{config.target}' has a single class ({next(iter(counts))!r}); "
                "classification needs at least two"
            )
    elif not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise DataError(
            f"target column '{config.target}' is not numeric (dtype {y.dtype}), so it cannot be "
            "a regression target; use task=classification"
        )
    return y, task, counts


def _roles(
    config: AutoMLConfig, features: pd.DataFrame, source: str, task: str, y: pd.Series
) -> ColumnRoles:
    """What each feature column is, logged; refused when no column is left to use."""
    roles = detect_roles(features, config.column_overrides)
    if config.enable_onnx_compatible_models:
        roles = roles.portable()
    if not config.featurize and not roles.numeric:
        raise ConfigError(
            "featurization='off' uses numeric columns only and this table has none; "
            "use featurization='auto'"
        )
    if config.task is None:  # said once every check has passed: a refusal stays one line
        log.info("task: %s, inferred from target '%s' (%s, %d distinct values); "
                 "set task to override", task, config.target, y.dtype, y.nunique())
    for role, columns in roles.summary().items():
        if columns:
            log.info("%s columns: %s", role, ", ".join(columns))
    if not roles.used:
        dropped = ", ".join(f"{c} ({why})" for c, why in roles.dropped.items())
        raise DataError(
            f"no usable feature column is left in '{source}': {dropped or 'none given'}"
        )
    return roles


def _screen(
    config: AutoMLConfig, task: str, keys: list[str], features: pd.DataFrame, roles: ColumnRoles
) -> tuple[list[str], dict[str, str]]:
    """Leave out the families that cannot work or would eat the budget on this data."""
    skipped: dict[str, str] = {}
    if config.weight_column:
        for key in keys:
            if not has_fit_parameter(FAMILIES[key].estimator_class(task)(), "sample_weight"):
                skipped[key] = f"{FAMILIES[key].name} skipped: it cannot use sample weights"
    if not config.featurize and "multinomial_naive_bayes" in keys:
        # Without featurization nothing rescales the inputs into the non-negative range it needs.
        skipped["multinomial_naive_bayes"] = (
            "MultinomialNaiveBayes skipped: it needs non-negative features, which "
            "featurization='off' does not provide"
        )
    kept = [k for k in keys if k not in skipped]
    if not kept:
        raise ConfigError(
            f"no allowed model can use weight_column '{config.weight_column}': "
            f"{'; '.join(skipped.values())}; allow another model or drop the weights"
        )
    width = _encoded_width(features, roles)
    kept, too_slow = screen_families(kept, n_rows=len(features), n_features=width)
    skipped.update(too_slow)
    for reason in skipped.values():
        log.info("%s", reason)
    return kept, skipped


def _encoded_width(features: pd.DataFrame, roles: ColumnRoles) -> int:
    """About how many columns the model sees after encoding: sizes the slow-family caps."""
    onehot: int = sum(min(features[c].nunique(), 30) for c in (*roles.categorical, *roles.boolean))
    return (
        len(roles.numeric) + len(roles.high_cardinality) + onehot
        + 9 * len(roles.datetime) + 200 * len(roles.text)
    )


def _check_positive_label(config: AutoMLConfig, task: str, counts: dict[str, int]) -> None:
    label = config.positive_label
    if label is None:
        return
    if task != "classification" or len(counts) != 2:
        kind = "regression" if task != "classification" else f"{len(counts)} classes"
        raise ConfigError(
            f"positive_label={label!r} applies to binary classification, this target has {kind}; "
            "drop positive_label"
        )
    if str(label) not in counts:
        raise ConfigError(
            f"positive_label={label!r} is not a class of '{config.target}'; "
            f"the classes are: {', '.join(map(repr, sorted(counts)))}"
        )


def _check_weights(weights: pd.Series, name: str) -> None:
    if not pd.api.types.is_numeric_dtype(weights) or weights.isna().any() or (weights < 0).any():
        raise DataError(
            f"weight_column '{name}' must hold non-negative numbers with no missing values; "
            f"it has dtype {weights.dtype}, {int(weights.isna().sum())} missing"
        )


def _check_split(config: AutoMLConfig, n_rows: int, counts: dict[str, int]) -> None:
    if config.test_size is not None and round(n_rows * config.test_size) < 1:
        raise DataError(
            f"test_size={config.test_size} of {n_rows} rows leaves no test row; "
            "use a larger test_size"
        )
    scheme, value = SplitPlan.of(config).scheme(n_rows)
    if scheme == "cv":
        folds = int(value)
        if n_rows < folds:
            raise DataError(
                f"n_cross_validations={folds} needs at least {folds} rows, the data has {n_rows}; "
                "use fewer folds"
            )
        rare = {k: v for k, v in counts.items() if v < folds}
        if rare and config.n_cross_validations is None:
            # The default scheme bends: folds stay stratified as far as the rare class allows,
            # and a fold without it is scored like any other (its probability column is zero).
            label, count = min(rare.items(), key=lambda kv: kv[1])
            log.warning("class %r has %d rows, fewer than the %d folds: some folds lack it",
                        label, count, folds)
        elif rare:
            label, count = min(rare.items(), key=lambda kv: kv[1])
            raise DataError(
                f"n_cross_validations={folds} needs at least {folds} rows of every class, "
                f"class {label!r} has {count}; use fewer folds or more data"
            )
    elif scheme == "holdout":
        n_valid = round(n_rows * float(value))
        if n_valid < 1 or n_rows - n_valid < 2:
            raise DataError(
                f"validation_size={value} of {n_rows} rows leaves no usable split; "
                "use more data or cross-validation"
            )
        if counts and n_valid < len(counts):
            raise DataError(
                f"validation_size={value} gives {n_valid} validation rows for {len(counts)} "
                "classes; use a larger validation_size or cross-validation"
            )


def _check_other(
    config: AutoMLConfig, other: pd.DataFrame, features: pd.Index, knob: str, source: str | None
) -> None:
    if other.empty:
        raise DataError(f"{knob} '{source}' has no rows")
    require_column(config.target, list(other.columns), source or knob, "target column")
    if other[config.target].isna().any():
        raise DataError(f"target column '{config.target}' has missing values in {knob} '{source}'")
    if config.weight_column and config.weight_column not in other.columns:
        raise DataError(
            f"{knob} '{source}' lacks weight_column '{config.weight_column}'; "
            "add it (1.0 everywhere weighs all rows equally)"
        )
    absent = [c for c in features if c not in other.columns]
    if absent:
        raise DataError(
            f"{knob} '{source}' lacks the training columns {', '.join(map(str, absent[:10]))}; "
            "give it the same columns as the training data"
        )
