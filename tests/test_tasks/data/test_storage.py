"""tasks.data.storage: reading and writing tables by file name, with errors a user can act on."""

from __future__ import annotations

import gzip
import re

import pandas as pd
import pytest
from support import load

from tasks.errors import DataError
from tasks.data.storage import FORMATS, detect_format, read_table, write_table


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    # Strings, integers, floats and missing values (Age, Cabin) from a real table.
    return load("titanic").head(60).reset_index(drop=True)


def _same(back: pd.DataFrame, frame: pd.DataFrame) -> None:
    # Text formats cannot keep pandas' exact string dtype; values, columns and order must match.
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


@pytest.mark.parametrize(
    ("name", "writer"),
    [
        ("table.csv", lambda f, p: f.to_csv(p, index=False)),
        ("table.tsv", lambda f, p: f.to_csv(p, index=False, sep="\t")),
        ("table.tab", lambda f, p: f.to_csv(p, index=False, sep="\t")),
        ("table.parquet", lambda f, p: f.to_parquet(p, index=False)),
        ("table.pq", lambda f, p: f.to_parquet(p, index=False)),
        ("table.jsonl", lambda f, p: f.to_json(p, orient="records", lines=True)),
        ("table.ndjson", lambda f, p: f.to_json(p, orient="records", lines=True)),
    ],
)
def test_read_table_round_trips_each_format(tmp_path, sample, name, writer):
    path = tmp_path / name
    writer(sample, path)
    _same(read_table(str(path)), sample)


def test_read_table_reads_gzip_compressed_csv(tmp_path, sample):
    path = tmp_path / "table.csv.gz"
    with gzip.open(path, "wt") as out:
        sample.to_csv(out, index=False)
    # The file really is compressed: its first bytes are gzip's magic number, not CSV text.
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    _same(read_table(str(path)), sample)


def test_read_table_reads_gzip_compressed_jsonl(tmp_path, sample):
    path = tmp_path / "table.jsonl.gz"
    with gzip.open(path, "wt") as out:
        sample.to_json(out, orient="records", lines=True)
    _same(read_table(str(path)), sample)


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank_lines"])
def test_empty_file_is_a_data_error(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=r"empty\.csv' is not a readable csv file"):
        read_table(str(path))


def test_read_table_accepts_file_url(tmp_path, sample):
    path = tmp_path / "table.parquet"
    sample.to_parquet(path, index=False)
    _same(read_table(path.as_uri()), sample)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.csv.gz", "csv"),
        ("data.CSV.GZ", "csv"),
        ("data.tsv.bz2", "tsv"),
        ("data.jsonl.zst", "jsonl"),
        ("data.ndjson.xz", "jsonl"),
        ("data.csv.zip", "csv"),
        ("s3://bucket/dir.v2/data.parquet", "parquet"),
        ("https://host/data.csv?version=3", "csv"),
    ],
)
def test_detect_format_looks_past_compression_and_query(name, expected):
    assert detect_format(name) == expected


@pytest.mark.parametrize("name", ["data.gz", "data.txt", "data", "data.xlsx.gz"])
def test_detect_format_unknown_extension_lists_valid_ones(name):
    with pytest.raises(DataError, match=re.escape(name)) as info:
        detect_format(name)
    message = str(info.value)
    for ext in FORMATS:
        assert ext in message


def test_read_table_unknown_extension_lists_valid_ones(tmp_path, sample):
    path = tmp_path / "table.xlsx"
    sample.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"\.csv.*\.parquet.*\.tsv"):
        read_table(str(path))


def test_missing_file_names_path_and_says_not_found(tmp_path):
    path = tmp_path / "nowhere" / "train.csv"
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*not found"):
        read_table(str(path))


def test_missing_file_error_uses_what(tmp_path):
    path = tmp_path / "valid.parquet"
    with pytest.raises(DataError, match=r"^validation_data '.*valid\.parquet' was not found"):
        read_table(str(path), what="validation_data")


def test_unreadable_content_is_a_data_error(tmp_path, sample):
    path = tmp_path / "table.parquet"
    sample.to_csv(path, index=False)  # CSV text under a Parquet name
    with pytest.raises(DataError, match=r"is not a readable parquet file"):
        read_table(str(path))


def test_directory_is_a_data_error(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError, match=r"folder"):
        read_table(str(folder))


@pytest.mark.parametrize(
    "name",
    [
        "out.csv", "out.parquet", "out.tsv", "sub/dir/out.csv.gz",
        "out.csv.bz2", "out.tsv.xz", "out.csv.zip",
    ],
)
def test_write_table_reads_back_equal(tmp_path, sample, name):
    path = tmp_path / name
    write_table(sample, str(path))
    assert path.exists()
    _same(read_table(str(path)), sample)


def test_write_table_parquet_keeps_dtypes(tmp_path, sample):
    path = tmp_path / "out.parquet"
    write_table(sample, str(path))
    pd.testing.assert_frame_equal(pd.read_parquet(path), sample)


def test_write_table_refuses_jsonl(tmp_path, sample):
    path = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=r"cannot write .*out\.jsonl"):
        write_table(sample, str(path))
    assert not path.exists()
