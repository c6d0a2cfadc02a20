"""Read a table from a local path or an fsspec URL. The one module that talks to storage."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd

from tasks.errors import DataError

__all__ = ["read_table", "write_table", "detect_format", "FORMATS"]

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
    """The table format from the file name, looking past a compression suffix."""
    suffixes = [s.lower() for s in PurePosixPath(url.split("?")[0]).suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in FORMATS:
        return FORMATS[suffixes[-1]]
    raise DataError(
        f"cannot tell the format of '{url}' from its name; "
        f"use one of the extensions {', '.join(sorted(FORMATS))}"
    )


def read_table(
    url: str, *, what: str = "data", storage_options: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Read CSV, TSV, Parquet or JSON Lines into a DataFrame, with errors a user can act on."""
    fmt = detect_format(url)
    try:
        with fsspec.open(url, "rb", compression="infer", **(storage_options or {})) as handle:
            frame = _READERS[fmt](handle)
    except FileNotFoundError:
        raise DataError(f"{what} '{url}' was not found; check the path or URL") from None
    except IsADirectoryError:
        raise DataError(f"{what} '{url}' is a folder; name a file") from None
    except PermissionError:
        raise DataError(f"{what} '{url}' cannot be read: permission denied") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{what} '{url}' is not a readable {fmt} file: {first}") from None
    if frame.shape[1] == 0:
        raise DataError(f"{what} '{url}' has no columns")
    return frame


def write_table(frame: pd.DataFrame, url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Write CSV or Parquet (by extension) to a path or URL."""
    fmt = detect_format(url)
    if fmt not in ("csv", "parquet", "tsv"):
        raise DataError(f"cannot write '{url}': use a .csv, .tsv or .parquet name")
    with fsspec.open(url, "wb", compression="infer", auto_mkdir=True, **(storage_options or {})) as out:
        if fmt == "parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False, sep="\t" if fmt == "tsv" else ",")


def _read_csv(handle: Any) -> pd.DataFrame:
    return pd.read_csv(handle)


def _read_tsv(handle: Any) -> pd.DataFrame:
    return pd.read_csv(handle, sep="\t")


def _read_jsonl(handle: Any) -> pd.DataFrame:
    return pd.read_json(handle, lines=True)


def _read_parquet(handle: Any) -> pd.DataFrame:
    return pd.read_parquet(handle)


_READERS = {"csv": _read_csv, "tsv": _read_tsv, "parquet": _read_parquet, "jsonl": _read_jsonl}
