"""Read a table from a local path or an fsspec URL. The one module that talks to storage."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import fsspec
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from tasks.errors import DataError, StorageError

__all__ = ["read_table", "write_table", "detect_format", "public_url", "mask_secrets", "FORMATS"]

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
# Query parameters of presigned and SAS URLs that are credentials, not addresses.
_SECRET_QUERY = re.compile(r"sig|signature|token|key|secret|password|credential", re.IGNORECASE)
# storage_options entries that hold credentials (s3fs key/secret/token, adlfs account_key, ...).
_SECRET_NAME = re.compile(r"key|secret|token|password|credential|connection_string|sas",
                          re.IGNORECASE)


def public_url(url: str) -> str:
    """The URL without a user:password@ part or credential query parameters: safe to show."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive letter)
        return url
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not _SECRET_QUERY.search(k)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
    storage_options: dict[str, Any] | None = None,
    fmt: str | None = None,
) -> pd.DataFrame:
    """Read CSV, TSV, Parquet (a file or a folder of parts) or JSON Lines, with errors a user
    can act on. fmt overrides the format told from the name."""
    shown = f"{what} '{public_url(url)}'"
    if fmt is None:
        fmt = "parquet" if _is_bare_folder(url, storage_options) else detect_format(url)
    elif fmt not in _READERS:
        raise DataError(f"format '{fmt}' of {shown} is unknown; use one of {', '.join(_READERS)}")
    try:
        if fmt == "parquet":
            frame = _read_parquet_url(url, storage_options)
        else:
            with fsspec.open(url, "rb", compression="infer", **(storage_options or {})) as handle:
                frame = _READERS[fmt](handle)
    except FileNotFoundError:
        raise DataError(_missing(shown, url, storage_options)) from None
    except IsADirectoryError:
        raise DataError(
            f"{shown} is a folder; name a file, or end a Parquet folder with '/'"
        ) from None
    except PermissionError:
        raise DataError(
            f"{shown} cannot be read: access denied; check the credentials (environment, "
            "~/.aws or --storage-options) and that they may read it"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown} is not a readable {fmt} file: it is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = _scrub(_first_line(exc), url, storage_options)
        if _unreachable(exc):
            raise StorageError(_unreachable_sentence(shown, first)) from None
        if "size is 0 bytes" in first:
            first = "it is empty"
        raise DataError(f"{shown} is not a readable {fmt} file: {first}") from None
    except Exception as exc:
        if not _unreachable(exc):  # botocore's connection errors are not OSErrors
            raise
        first = _scrub(_first_line(exc), url, storage_options)
        raise StorageError(_unreachable_sentence(shown, first)) from None
    if frame.shape[1] == 0:
        raise DataError(f"{shown} has no columns")
    return frame


def write_table(frame: pd.DataFrame, url: str, storage_options: dict[str, Any] | None = None) -> None:
    """Write CSV or Parquet (by extension) to a path or URL."""
    fmt = detect_format(url)
    shown = public_url(url)
    if fmt not in ("csv", "parquet", "tsv") or url.endswith("/"):
        raise DataError(f"cannot write '{shown}': use a .csv, .tsv or .parquet name")
    try:
        with fsspec.open(url, "wb", compression="infer", auto_mkdir=True,
                         **(storage_options or {})) as out:
            if fmt == "parquet":
                frame.to_parquet(out, index=False)
            else:
                frame.to_csv(out, index=False, sep="\t" if fmt == "tsv" else ",")
    except PermissionError:
        raise DataError(f"cannot write '{shown}': access denied; check the credentials") from None
    except FileNotFoundError:
        raise DataError(f"cannot write '{shown}': its bucket or folder does not exist") from None


def _is_bare_folder(url: str, storage_options: dict[str, Any] | None) -> bool:
    """A name without any extension that is a folder: read it as Parquet part files."""
    if PurePosixPath(url.split("?")[0]).suffix:
        return False
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        return bool(fs.isdir(path))
    except Exception:  # noqa: BLE001 - unreachable or forbidden: the read itself will say so
        return False


def _read_parquet_url(url: str, storage_options: dict[str, Any] | None) -> pd.DataFrame:
    # pandas reads a file or a folder of part files alike; any storage_options (even {}) make it
    # go through fsspec instead of pyarrow's own S3 client, so endpoints and credentials agree.
    remote = "://" in url
    return pd.read_parquet(url, storage_options=(storage_options or {}) if remote else None)


def _missing(shown: str, url: str, storage_options: dict[str, Any] | None) -> str:
    """Tell a missing bucket (or container) from a missing key: the fixes differ."""
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        bucket = path.split("/", 1)[0]
        if not isinstance(fs, LocalFileSystem) and "/" in path and not fs.exists(bucket):
            return (f"{shown} was not found: bucket '{bucket}' does not exist; "
                    "check the bucket name and the endpoint")
    except Exception:  # noqa: BLE001 - the probe only refines the message
        pass
    return f"{shown} was not found; check the path or URL"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _unreachable(exc: BaseException) -> bool:
    """A connection or timeout failure, whichever library raised it: transient, so retried."""
    names = [cls.__name__ for cls in type(exc).__mro__]
    return any("Connect" in name or "Timeout" in name for name in names)


def _unreachable_sentence(shown: str, first: str) -> str:
    return f"{shown} cannot be reached: {first}; check the endpoint and the network"


def _scrub(text: str, url: str, storage_options: dict[str, Any] | None) -> str:
    # A library's message may quote the URL or a credential; show neither.
    text = text.replace(url, public_url(url))
    for value in _secrets(storage_options or {}):
        text = text.replace(value, "***")
    return text


def _secrets(options: Any, secret: bool = False) -> list[str]:
    if isinstance(options, dict):
        return [s for k, v in options.items() for s in _secrets(v, secret or _is_secret(k))]
    return [options] if secret and isinstance(options, str) and len(options) >= 4 else []


def _is_secret(name: Any) -> bool:
    return bool(_SECRET_NAME.search(str(name)))


def mask_secrets(options: Any) -> Any:
    """storage_options with credential values replaced by '***': safe to record or show."""
    if isinstance(options, dict):
        return {k: "***" if _is_secret(k) and not isinstance(v, dict | bool) else mask_secrets(v)
                for k, v in options.items()}
    return options


def _read_csv(handle: Any) -> pd.DataFrame:
    return pd.read_csv(handle)


def _read_tsv(handle: Any) -> pd.DataFrame:
    return pd.read_csv(handle, sep="\t")


def _read_jsonl(handle: Any) -> pd.DataFrame:
    return pd.read_json(handle, lines=True)


def _read_parquet(handle: Any) -> pd.DataFrame:
    return pd.read_parquet(handle)


_READERS = {"csv": _read_csv, "tsv": _read_tsv, "parquet": _read_parquet, "jsonl": _read_jsonl}
