"""Parquet read a group of columns at a time (tasks.data.parquet): the same table as pandas reads
it, each number in the smallest dtype that holds it unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.data.parquet import GROUPS
from tasks.data.storage import read_table


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1_000
    frame = pd.DataFrame({
        "small_int": rng.integers(0, 100, n),  # int64 on disk, int8 in memory
        "big_int": rng.integers(0, 2**40, n),
        "halves": rng.integers(0, 8, n) / 2.0,  # float64 whose values are all float32's
        "noise": rng.normal(size=n),  # float64 that float32 would round
        "with_gaps": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n) * 0.25),
        "word": rng.choice(["red", "green", "blue"], n),
        "level": pd.Categorical(rng.choice(["a", "b"], n)),
        "flag": rng.random(n) < 0.5,
        "when": pd.date_range("2026-01-01", periods=n, freq="h"),
    })
    for extra in range(2 * GROUPS):  # more columns than groups: several columns a group
        frame[f"x{extra}"] = rng.normal(size=n)
    return frame


def test_columns_read_in_groups_are_the_table_pandas_reads(table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path, index=False)
    read = read_table(str(path))
    expected = pd.read_parquet(path)
    assert list(read.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(read, expected, check_dtype=False, check_exact=True)
    dtypes = read.dtypes
    assert dtypes["small_int"] == np.int8 and dtypes["big_int"] == np.int64
    assert dtypes["halves"] == np.float32 and dtypes["with_gaps"] == np.float32
    assert dtypes["noise"] == np.float64  # would change: kept
    assert isinstance(dtypes["level"], pd.CategoricalDtype)
    assert read.memory_usage(deep=True).sum() < expected.memory_usage(deep=True).sum()


def test_a_folder_of_parts_and_a_stored_index(table, tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(table), 400)):
        part = table.iloc[start:start + 400].copy()
        part.index = [f"row{j}" for j in part.index]  # not a range: stored as a column
        part.to_parquet(folder / f"part-{i}.parquet")
    read = read_table(f"{folder}/")
    assert len(read) == len(table) and "__index_level_0__" not in read.columns
    pd.testing.assert_frame_equal(read.reset_index(drop=True), table, check_dtype=False,
                                  check_exact=True, check_categorical=False)
