"""Read a table from a local path or an fsspec URL. The one module that talks to storage (its
errors' sentences: tasks.data.storage_errors)."""

from __future__ import annotations

import io
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING

import fsspec
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from tasks.data.delimited import read_delimited, read_header
from tasks.data.memory import held_table, is_held
from tasks.data.parquet import data_columns, read_parquet
from tasks.data.redact import mask_secrets, public_url, scrub
from tasks.data.storage_errors import error_kind, storage_errors
from tasks.errors import AutoMLError, DataError, first_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from fsspec import AbstractFileSystem

    from tasks.types import Json

__all__ = ["read_table", "read_columns", "write_table", "detect_format", "public_url",
           "mask_secrets", "FORMATS"]

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSIONS = {".gz", ".bz2", ".zst", ".xz", ".zip"}


def detect_format(url: str) -> str:
    """The table format from the file name, looking past a compression suffix.

    A name ending in '/' is a folder of Parquet part files, as Spark and Dask write them.
    """
    if url.endswith("/"):
        return "parquet"
    suffixes = [s.lower() for s in PurePosixPath(url.split("?")[0]).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise DataError(
        f"cannot tell the format of '{public_url(url)}' from its name; "
        f"use one of the extensions {', '.join(sorted(FORMATS))}, "
        "or end a folder of Parquet files with '/'"
    )


def read_table(
    url: str,
    *,
    what: str = "data",
    storage_options: Json | None = None,
    fmt: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read CSV, TSV, Parquet (a file or a folder of parts) or JSON Lines, with errors a user
    can act on. fmt overrides the format told from the name; encoding, a CSV's or TSV's text
    encoding (detected when None: tasks.data.delimited). A `dataframe://` URL is a table
    the Python API holds in this process (tasks.data.memory).

    Every remote read goes through fsspec (never pyarrow's own S3/Azure clients), so endpoints
    and credentials are the same for every format; files are streamed, not downloaded first.
    """
    if is_held(url):
        return held_table(url, what)
    shown = f"{what} '{public_url(url)}'"
    fs, path = _filesystem(url, storage_options, shown)
    if fmt is None:
        fmt = "parquet" if _is_bare_folder(fs, path, url) else detect_format(url)
    elif fmt not in ("csv", "tsv", "parquet", *_READERS):
        known = ", ".join(("csv", "tsv", "parquet", *_READERS))
        raise DataError(f"format '{fmt}' of {shown} is unknown; use one of {known}")
    with storage_errors(shown, url, fs, path, storage_options, verb="read"):
        try:
            if fmt == "parquet":
                frame = read_parquet(path, fs)
            elif fmt in ("csv", "tsv"):
                frame = read_delimited(lambda: fs.open(path, "rb", compression="infer"), fmt,
                                       shown, encoding)
            else:
                with fs.open(path, "rb", compression="infer") as handle:
                    frame = _READERS[fmt](handle)
        except IsADirectoryError:
            raise DataError(
                f"{shown} is a folder; name a file, or end a Parquet folder with '/'"
            ) from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{shown} is not a readable {fmt} file: it is empty") from None
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            if error_kind(exc) is not None:
                raise
            first = scrub(first_line(exc), url, storage_options)
            if "size is 0 bytes" in first:
                first = "it is empty"
            raise DataError(f"{shown} is not a readable {fmt} file: {first}") from None
    if frame.shape[1] == 0:
        raise DataError(f"{shown} has no columns")
    return frame


def read_columns(
    url: str,
    *,
    what: str = "data",
    storage_options: Json | None = None,
    encoding: str | None = None,
) -> list[str] | None:
    """The column names read_table gives, from a Parquet schema or a CSV/TSV header alone (no
    rows); None for JSON Lines and held tables, which only the whole read can tell.

    A missing file or a refused credential raises read_table's sentence (the same code says it);
    whatever else the header alone cannot tell (an empty or broken file) gives None: the flow's
    whole read says it, rather than a second whole read here, before Prefect starts.
    """
    if is_held(url):
        return None
    shown = f"{what} '{public_url(url)}'"
    fs, path = _filesystem(url, storage_options, shown)
    fmt = "parquet" if _is_bare_folder(fs, path, url) else detect_format(url)
    if fmt not in ("parquet", "csv", "tsv"):
        return None
    try:
        with storage_errors(shown, url, fs, path, storage_options, verb="read"):
            if fmt == "parquet":
                return _parquet_columns(fs, path) or None
            return read_header(lambda: fs.open(path, "rb", compression="infer"), fmt, shown,
                               encoding) or None
    except AutoMLError:
        raise
    except Exception:  # noqa: BLE001 - the flow's whole read says what is wrong
        return None


def _parquet_columns(fs: AbstractFileSystem, path: str) -> list[str]:
    """The schema's names without the columns pandas restores as the index (as read_table)."""
    import pyarrow.parquet as pq

    local = isinstance(fs, LocalFileSystem)
    return data_columns(pq.ParquetDataset(path, filesystem=None if local else fs))


def write_table(frame: pd.DataFrame, url: str, storage_options: Json | None = None) -> None:
    """Write CSV, TSV or Parquet (by extension, compressed by suffix) to a path or URL."""
    fmt = detect_format(url)
    shown = f"'{public_url(url)}'"
    if fmt not in ("csv", "parquet", "tsv") or url.endswith("/"):
        raise DataError(f"cannot write {shown}: use a .csv, .tsv or .parquet name")
    fs, path = _filesystem(url, storage_options, shown)
    if isinstance(fs, LocalFileSystem):
        # Object stores have no folders to make. fsspec's own parent of its path: a drive's root
        # on Windows, which no public method gives.
        fs.makedirs(fs._parent(path), exist_ok=True)  # noqa: SLF001
    with (
        storage_errors(shown, url, fs, path, storage_options, verb="write"),
        fs.open(path, "wb", compression="infer") as out,
    ):
        if fmt == "parquet":
            frame.to_parquet(out, index=False)
        else:
            # Text through an explicit wrapper: zstandard's writer has no `mode` for pandas
            # to tell it is binary; detach so the compressor is closed once, by fsspec.
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            frame.to_csv(text, index=False, sep="\t" if fmt == "tsv" else ",")
            text.flush()
            text.detach()


def _filesystem(url: str, options: Json | None, shown: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem and path; bad options (a malformed connection string) say so."""
    try:
        fs, path = fsspec.core.url_to_fs(url, **(options or {}))  # untyped: (filesystem, path)
        return fs, path
    except (ImportError, ValueError, TypeError) as exc:
        first = scrub(first_line(exc), url, options)
        raise DataError(
            f"{shown} cannot be opened: {first.rstrip('.')}; check the URL and the storage options"
        ) from None


def _is_bare_folder(fs: AbstractFileSystem, path: str, url: str) -> bool:
    """A name without any extension that is a folder: read it as Parquet part files."""
    if PurePosixPath(url.split("?")[0]).suffix:
        return False
    try:
        return bool(fs.isdir(path))
    except Exception:  # noqa: BLE001 - unreachable or forbidden: the read itself will say so
        return False


def _read_jsonl(handle: IO[bytes]) -> pd.DataFrame:
    return pd.read_json(handle, lines=True)


_READERS: dict[str, Callable[[IO[bytes]], pd.DataFrame]] = {
    "jsonl": _read_jsonl
}
