"""The training table on a Dask cluster: read partition by partition from Parquet (a file, a folder
or a prefix; local, S3, Azure), its columns typed from the schema, the target's task inferred,
categorical levels counted, the rows encoded and split by holdout, each side persisted on the
workers that read it. The client only ever holds the schema, the counts and a few example rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from tasks.data.inspect import MAX_INFERRED_CLASSES
from tasks.data.storage import public_url
from tasks.errors import DataError, first_line

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from tasks.types import Array

__all__ = ["ClusterTable", "SplitSizes", "read_parquet", "load_table", "prepare_rows",
           "release_memory",
           "MAX_LEVELS", "Y", "LAYERS"]

log = logging.getLogger("automl")

# Levels of one categorical column kept, the most frequent first; the rest are read as unknown
# (missing to the boosters), as the single-node encoders cap rare levels.
MAX_LEVELS = 1000
Y = "__automl_target__"  # the encoded target, beside the features in each partition
# The persisted sides' key prefixes, named so a cluster's owner (and the tests) can see which
# worker holds which partition.
LAYERS = {"train": "automl-train", "valid": "automl-valid", "test": "automl-test"}
# Holdout validation sized by rows: a tenth of the table, at most this many rows.
MAX_VALID_ROWS = 200_000


@dataclass(frozen=True)
class SplitSizes:
    """How the table is split: fractions of its rows (holdout; no cross-validation here)."""

    validation: float | None  # None: a tenth, at most MAX_VALID_ROWS
    test: float | None  # None: no test rows unless a test table is given
    seed: int


@dataclass(frozen=True)
class ClusterTable:
    """The encoded sides on the workers, and what the client knows of them."""

    train: dd.DataFrame  # features (categorical codes first, float32) and Y
    valid: dd.DataFrame
    test: dd.DataFrame | None
    # The held-out sides' raw rows, the same rows in the same order, lazy (read again from the
    # source when used): another model (the registry's champion) is scored on them.
    raw_valid: dd.DataFrame
    raw_test: dd.DataFrame | None
    target: str
    prepare: ColumnTransformer  # raw columns -> the boosters' input; fitted, levels known
    features: list[str]  # raw columns read, in the table's order
    n_categorical: int  # the first n_categorical prepared columns are category codes
    task: str
    classes: Array | None  # labels, in code order
    y_valid: Array  # the validation target (codes), gathered: one column
    y_test: Array | None
    y_range: float  # of the training target (regression's normalised metrics)
    rows: dict[str, int]  # train / valid / test
    example: pd.DataFrame  # a few raw rows: the registered model's signature and input example
    dropped: dict[str, str]  # column -> why it is not used


def read_parquet(url: str, options: dict[str, object] | None, what: str,
                 partitions: int = 2) -> dd.DataFrame:
    """A lazy Dask DataFrame of the Parquet at url: only its schema is read here. A table the
    Python API holds in memory (tasks.data.memory) is cut into `partitions` instead, sent to the
    workers when the run persists it."""
    import dask.dataframe as dd

    from tasks.data.memory import held_table, is_held

    if is_held(url):
        held: dd.DataFrame = dd.from_pandas(held_table(url, what), npartitions=partitions)
        return held

    try:
        frame: dd.DataFrame = dd.read_parquet(url, storage_options=options or None)
    except FileNotFoundError:
        raise DataError(f"{what} '{public_url(url)}' does not exist; point it at a Parquet file, "
                        "a folder of Parquet files or a prefix of them") from None
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"{what} '{public_url(url)}' could not be read as Parquet "
                        f"({first_line(exc, 200)}); distributed training reads Parquet: a file, "
                        "a folder or a prefix of part files") from None
    return frame


def load_table(client: Client, frame: dd.DataFrame, target: str, task: str | None,
               sizes: SplitSizes, validation: dd.DataFrame | None = None,
               test: dd.DataFrame | None = None, source: str = "training data") -> ClusterTable:
    """Check, count, encode, split and persist the table on the cluster."""
    from dask.base import compute

    if target not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise DataError(f"target column '{target}' is not in the {source}; its columns are: "
                        f"{shown}. Set target to one of them")
    frame = frame.dropna(subset=[target])
    features, categorical, dropped = _column_kinds(frame, target)
    if not features:
        raise DataError(f"the {source} has no column besides the target '{target}' that "
                        "distributed training can use (numbers, booleans or categories)")
    task = task or _infer_task(frame[target])
    counts = [frame[c].value_counts() for c in categorical]
    y = frame[target]
    summary = (y.value_counts() if task == "classification" else (y.min(), y.max()),
               frame.map_partitions(len).sum())
    *levels, (target_summary, rows) = compute(*counts, summary)
    if rows == 0:
        raise DataError(f"the {source} has no row with a target value; point training_data at "
                        "a table with labelled rows")
    classes: Array | None = None
    y_range = 1.0
    if task == "classification":
        classes = np.sort(np.asarray(target_summary.index))
        if len(classes) < 2:
            raise DataError(f"target '{target}' has {len(classes)} distinct value(s); "
                            "classification needs at least two")
    else:
        if not pd.api.types.is_numeric_dtype(y.dtype):
            raise DataError(f"target '{target}' holds text ({y.dtype}), not numbers: it cannot be "
                            "a regression target; use task=classification")
        low, high = target_summary
        y_range = float(high - low) or 1.0
    kept = [list(c.sort_values(ascending=False).index[:MAX_LEVELS]) for c in levels]
    for column, count in zip(categorical, levels, strict=True):
        if len(count) > MAX_LEVELS:
            log.info("distributed: column %r has %d levels; the %d most frequent are kept, the "
                     "others read as unknown", column, len(count), MAX_LEVELS)
    first = frame[[*features, target]].head(5)  # the first partition's first rows
    example = first[features]
    prepare = _preparer(categorical, [c for c in features if c not in categorical], kept)
    prepare.fit(example)
    meta = _prepared(first, prepare, features, target, classes)
    raw = _split(frame, int(rows), sizes, validation is None, test is None)
    if validation is not None:
        raw["valid"] = _checked_side(validation, target, features, classes)
    if test is not None:
        raw["test"] = _checked_side(test, target, features, classes)
    named = {side: part.map_partitions(_prepared, prepare, features, target, classes, meta=meta,
                                       token=LAYERS[side])
             for side, part in raw.items() if part is not None}
    persisted = dict(zip(named, client.persist(list(named.values())), strict=True))
    sizes_on = compute({side: part.map_partitions(len).sum()
                        for side, part in persisted.items()})[0]
    release_memory(client)
    # The targets of the held-out sides: one column each, for scoring on the client.
    held = compute({side: persisted[side][Y] for side in ("valid", "test")
                         if side in persisted})[0]
    raw_valid = raw["valid"]
    assert raw_valid is not None  # split from the table, or the validation table
    for side in ("train", "valid"):
        if sizes_on[side] == 0:
            raise DataError(f"the {side} side of the split has no rows ({int(rows)} rows in all); "
                            "give more rows or a larger validation_size")
    return ClusterTable(
        train=persisted["train"], valid=persisted["valid"], test=persisted.get("test"),
        raw_valid=raw_valid, raw_test=raw.get("test"), target=target,
        prepare=prepare, features=features, n_categorical=len(categorical), task=task,
        classes=classes, y_valid=np.asarray(held["valid"]),
        y_test=np.asarray(held["test"]) if "test" in held else None, y_range=y_range,
        rows={side: int(n) for side, n in sizes_on.items()}, example=example.reset_index(drop=True),
        dropped=dropped,
    )


def release_memory(client: Client) -> None:
    """Hand what the workers have freed back to the system (pyarrow's memory pool, the C heap):
    reading the raw partitions left about 130 MB per worker reserved at 1,000,000 rows, which
    the next trial's peak would otherwise stand on."""
    client.run(_release)


def _release() -> None:
    import ctypes
    import gc
    from contextlib import suppress

    import pyarrow

    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    with suppress(OSError, AttributeError):  # not glibc: its allocator keeps its own counsel
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def prepare_rows(table: ClusterTable, frame: pd.DataFrame) -> pd.DataFrame:
    """Raw rows as the boosters read them (the registered model's first step)."""
    prepared: pd.DataFrame = table.prepare.transform(frame[table.features])
    return prepared


def _column_kinds(frame: dd.DataFrame, target: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Features in the table's order, the categorical ones among them, and the columns left
    out, from the schema alone."""
    features, categorical, dropped = [], [], {}
    for name, dtype in frame.dtypes.items():
        if name == target:
            continue
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            features.append(str(name))
        elif pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            dropped[str(name)] = "a date or time (distributed mode does not expand dates)"
        else:
            features.append(str(name))
            categorical.append(str(name))
    return features, categorical, dropped


def _infer_task(y: dd.Series) -> str:
    """tasks.data.inspect.infer_task's rule, computed on the cluster."""
    from dask.base import compute

    if pd.api.types.is_bool_dtype(y.dtype) or not pd.api.types.is_numeric_dtype(y.dtype):
        return "classification"
    integral, distinct = compute((y.dropna() % 1 == 0).all(), y.nunique_approx())
    return "classification" if integral and distinct <= MAX_INFERRED_CLASSES else "regression"


def _preparer(categorical: list[str], numeric: list[str],
              levels: list[list[object]]) -> ColumnTransformer:
    parts: list[tuple[str, object, list[str]]] = []
    if categorical:
        parts.append(("categories", OrdinalEncoder(
            categories=levels, handle_unknown="use_encoded_value", unknown_value=np.nan,
            encoded_missing_value=np.nan, dtype=np.float32), categorical))
    if numeric:
        parts.append(("numbers", FunctionTransformer(
            _as_float32, feature_names_out="one-to-one"), numeric))
    return ColumnTransformer(parts, verbose_feature_names_out=False).set_output(transform="pandas")


def _as_float32(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(np.float32)


def _prepared(part: pd.DataFrame, prepare: ColumnTransformer, features: list[str], target: str,
              classes: Array | None) -> pd.DataFrame:
    out: pd.DataFrame = prepare.transform(part[features])
    y = part[target]
    if classes is not None:
        codes = pd.Categorical(y, categories=classes).codes  # -1: a label training lacks
        out[Y] = np.asarray(codes, dtype=np.int32)
        out = out[out[Y] >= 0]
    else:
        out[Y] = np.asarray(y, dtype=np.float64)
    return out


def _split(frame: dd.DataFrame, rows: int, sizes: SplitSizes, hold_valid: bool,
           hold_test: bool) -> dict[str, dd.DataFrame | None]:
    """Holdout by rows, partition by partition (each partition's rows drawn by the seed)."""
    test = None
    if hold_test and sizes.test:
        frame, test = frame.random_split([1 - sizes.test, sizes.test], random_state=sizes.seed)
    if not hold_valid:
        return {"train": frame, "valid": None, "test": test}
    share = sizes.validation or min(0.1, MAX_VALID_ROWS / max(rows, 1))
    train, valid = frame.random_split([1 - share, share], random_state=sizes.seed + 1)
    return {"train": train, "valid": valid, "test": test}


def _checked_side(frame: dd.DataFrame, target: str, features: list[str],
                  classes: Array | None) -> dd.DataFrame:
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise DataError(f"a validation or test table lacks column(s) the training data has: "
                        f"{', '.join(missing[:5])}; give it the same columns")
    frame = frame.dropna(subset=[target])
    # Rows of a label training lacks cannot be scored: left out of both the raw and encoded side.
    return frame if classes is None else frame[frame[target].isin(list(classes))]
