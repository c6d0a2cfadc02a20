"""Which raw input column each encoded feature of a fitted features step comes from."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

if TYPE_CHECKING:
    import pandas as pd

    from tasks.types import Array, Estimator

__all__ = ["raw_mapping"]

_PROBE_ROWS = 200


def raw_mapping(features: Estimator, frame: pd.DataFrame, columns: list[str]) -> Array:
    """A matrix (encoded features x raw columns) whose rows sum to 1: encoded contributions
    times it are raw contributions.

    Found by probing, not by parsing feature names: each raw column's values are rotated by one
    row and the encoded features that change are that column's (a one-hot group, a missing
    indicator, a date's parts, a text's TF-IDF terms all move with their one source). A feature
    that moves with several columns is split evenly among them. One that never moves on these
    rows (one row, or a column constant in them) goes to the column its name starts with
    (`city_Oslo`, `missingindicator_size`), else evenly to its transformer's columns."""
    probe = frame.iloc[:_PROBE_ROWS].reset_index(drop=True)
    base = np.asarray(features.transform(probe), dtype=float)
    owners = np.zeros((base.shape[1], len(columns)))
    if len(probe) > 1:
        for j, column in enumerate(columns):
            moved = probe.copy()
            moved[column] = np.roll(probe[column].to_numpy(), 1)
            changed = np.asarray(features.transform(moved), dtype=float) != base
            owners[changed.any(axis=0), j] = 1.0
    names = [str(n) for n in features.get_feature_names_out()]
    for index in np.flatnonzero(owners.sum(axis=1) == 0):
        sources = [c for c in _transformer_columns(features, int(index)) if c in columns] or columns
        named = _named_source(names[index], sources)
        owners[index, [columns.index(c) for c in ([named] if named else sources)]] = 1.0
    mapping: Array = owners / owners.sum(axis=1, keepdims=True)
    return mapping


def _named_source(name: str, sources: list[str]) -> str | None:
    # The longest, so that a column 'age' does not claim 'age_group_x' of a column 'age_group'.
    for column in sorted(sources, key=len, reverse=True):
        if name == column or name.startswith((f"{column}_", f"missingindicator_{column}")):
            return column
    return None


def _transformer_columns(features: Estimator, index: int) -> list[str]:
    transformer = features[-1] if isinstance(features, Pipeline) else features
    if not isinstance(transformer, ColumnTransformer):
        return []
    for name, part in transformer.output_indices_.items():
        if part.start <= index < part.stop:
            for fitted_name, _, cols in transformer.transformers_:
                if fitted_name == name:
                    return [str(c) for c in np.atleast_1d(np.asarray(cols, dtype=object))]
    return []
