"""Read a table from a local path or an fsspec URL. The one module that talks to storage."""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING

import fsspec
import pandas as pd
from fsspec.implementations.local import LocalFileSystem

from tasks.data.delimited import read_delimited
from tasks.data.memory import held_table, is_held
from tasks.data.redact import mask_secrets, public_url, scrub
from tasks.errors import DataError, StorageError, causes, first_line

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from fsspec import AbstractFileSystem

    from tasks.types import Json

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
# What the top of a URL's path is called, and where its credentials come from, per provider.
_CONTAINER = {"az": "container", "abfs": "container", "abfss": "container", "adl": "container"}
_CREDENTIALS = {
    "bucket": "AWS_* variables, ~/.aws, --storage-options or --storage-secret",
    "container": "AZURE_STORAGE_* variables, --storage-options or --storage-secret",
}


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
    elif fmt not in ("csv", "tsv", *_READERS):
        known = ", ".join(("csv", "tsv", *_READERS))
        raise DataError(f"format '{fmt}' of {shown} is unknown; use one of {known}")
    with _storage_errors(shown, url, fs, path, storage_options, verb="read"):
        try:
            if fmt == "parquet":
                local = isinstance(fs, LocalFileSystem)
                frame = pd.read_parquet(path, filesystem=None if local else fs)
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
            if _kind(exc) is not None:
                raise
            first = scrub(first_line(exc), url, storage_options)
            if "size is 0 bytes" in first:
                first = "it is empty"
            raise DataError(f"{shown} is not a readable {fmt} file: {first}") from None
    if frame.shape[1] == 0:
        raise DataError(f"{shown} has no columns")
    return frame


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
        _storage_errors(shown, url, fs, path, storage_options, verb="write"),
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


@contextmanager
def _storage_errors(
    shown: str, url: str, fs: AbstractFileSystem, path: str, options: Json | None, verb: str
) -> Iterator[None]:
    """Turn each library's not-found, denied and unreachable errors into one sentence."""
    try:
        yield
    except Exception as exc:
        kind = _kind(exc)
        if kind is None:
            raise
        if kind == "missing":
            raise DataError(_missing(shown, url, fs, path, verb)) from None
        if kind == "denied":
            where = _CREDENTIALS[_container_word(url)]
            raise DataError(
                f"{shown} cannot be {'read' if verb == 'read' else 'written'}: access denied; "
                f"check the credentials ({where}) and that they may {verb} it"
            ) from None
        first = scrub(first_line(_root(exc)), url, options)
        raise StorageError(
            f"{shown} cannot be reached: {first}; check the endpoint and the network"
        ) from None


def _kind(exc: BaseException) -> str | None:
    """missing, denied or unreachable, from the exception or what it wraps (adlfs wraps the
    Azure SDK's errors in RuntimeError on write); None for anything else."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    for err in causes(exc):
        if isinstance(err, FileNotFoundError | ResourceNotFoundError):
            return "missing"
        if isinstance(err, PermissionError | ClientAuthenticationError):
            return "denied"
        if isinstance(err, HttpResponseError) and err.status_code in (401, 403):
            return "denied"
        if isinstance(err, ServiceRequestError | ServiceResponseError):
            return "unreachable"
        # botocore's and aiohttp's connection errors are not OSErrors: know them by name.
        if any("Connect" in c.__name__ or "Timeout" in c.__name__ for c in type(err).__mro__):
            return "unreachable"
    return None


def _root(exc: BaseException) -> BaseException:
    return list(causes(exc))[-1]


def _is_bare_folder(fs: AbstractFileSystem, path: str, url: str) -> bool:
    """A name without any extension that is a folder: read it as Parquet part files."""
    if PurePosixPath(url.split("?")[0]).suffix:
        return False
    try:
        return bool(fs.isdir(path))
    except Exception:  # noqa: BLE001 - unreachable or forbidden: the read itself will say so
        return False


def _container_word(url: str) -> str:
    return _CONTAINER.get(url.split("://", 1)[0].lower(), "bucket") if "://" in url else "bucket"


def _missing(shown: str, url: str, fs: AbstractFileSystem, path: str, verb: str) -> str:
    """Tell a missing bucket (or container) from a missing key: the fixes differ."""
    word = _container_word(url)
    top = path.split("/", 1)[0]
    start = f"cannot write {shown}:" if verb == "write" else f"{shown} was not found:"
    try:
        if not isinstance(fs, LocalFileSystem) and "/" in path and not fs.exists(top):
            return f"{start} {word} '{top}' does not exist; check the {word} name and the endpoint"
    except Exception:  # noqa: BLE001, S110 - the probe only refines the message
        pass
    if verb == "write":
        return f"{start} its folder does not exist"
    return f"{shown} was not found; check the path or URL"


def _read_jsonl(handle: IO[bytes]) -> pd.DataFrame:
    return pd.read_json(handle, lines=True)


def _read_parquet(handle: IO[bytes]) -> pd.DataFrame:
    return pd.read_parquet(handle)


_READERS: dict[str, Callable[[IO[bytes]], pd.DataFrame]] = {
    "parquet": _read_parquet, "jsonl": _read_jsonl
}
