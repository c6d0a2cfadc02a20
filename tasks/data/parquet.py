"""Parquet read a group of columns at a time, each column's numbers downcast where no value
changes.

pd.read_parquet builds pyarrow's whole table and then pandas' copy of it: the process holds the
table twice at its peak. Here pyarrow holds one group of columns (an eighth of them) while it
becomes pandas columns, its buffers released as they are converted (self_destruct), and the
columns are never consolidated into one block (another copy): the peak is the table once, plus
one group.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["read_parquet", "data_columns", "GROUPS"]

GROUPS = 8  # column groups read one after another


def data_columns(dataset: object) -> list[str]:
    """The schema's names without the columns pandas would restore as the index."""
    schema = dataset.schema  # type: ignore[attr-defined]
    stored = (schema.pandas_metadata or {}).get("index_columns", [])
    index = {name for name in stored if isinstance(name, str)}  # a RangeIndex is not stored
    return [name for name in schema.names if name not in index]


def read_parquet(path: str, fs: AbstractFileSystem) -> pd.DataFrame:
    """A Parquet file or folder of parts, through fsspec's filesystem `fs` (pyarrow's own for a
    local path)."""
    import pyarrow.parquet as pq

    local = isinstance(fs, LocalFileSystem)
    dataset = pq.ParquetDataset(path, filesystem=None if local else fs)
    names = data_columns(dataset)
    size = max(1, math.ceil(len(names) / GROUPS))
    columns: dict[str, pd.Series] = {}
    for start in range(0, len(names), size):
        table = dataset.read(columns=names[start:start + size], use_pandas_metadata=False)
        group = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
        for name in group.columns:
            columns[name] = downcast(group[name])
        del group
    return pd.DataFrame(columns, copy=False)


def downcast(column: pd.Series) -> pd.Series:
    """The column in the smallest dtype that holds every value as it is: integers in the
    smallest integer type, floats in float32 when each value is one exactly."""
    if column.dtype.kind in "iu" and isinstance(column.dtype, np.dtype):
        return pd.to_numeric(column, downcast="integer" if column.dtype.kind == "i"
                             else "unsigned")
    if column.dtype == np.float64:
        narrow = column.to_numpy().astype(np.float32)
        if np.array_equal(narrow.astype(np.float64), column.to_numpy(), equal_nan=True):
            return pd.Series(narrow, index=column.index, name=column.name, copy=False)
    return column
