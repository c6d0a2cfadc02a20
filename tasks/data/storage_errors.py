"""Each storage library's not-found, denied and unreachable errors as one sentence a user can act
on (tasks.data.storage reads and writes through it)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from fsspec.implementations.local import LocalFileSystem

from tasks.data.redact import scrub
from tasks.errors import DataError, StorageError, causes, first_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fsspec import AbstractFileSystem

    from tasks.types import Json

__all__ = ["storage_errors", "error_kind"]

# What the top of a URL's path is called, and where its credentials come from, per provider.
_CONTAINER = {"az": "container", "abfs": "container", "abfss": "container", "adl": "container"}
_CREDENTIALS = {
    "bucket": "AWS_* variables, ~/.aws, --storage-options or --storage-secret",
    "container": "AZURE_STORAGE_* variables, --storage-options or --storage-secret",
}


@contextmanager
def storage_errors(
    shown: str, url: str, fs: AbstractFileSystem, path: str, options: Json | None, verb: str
) -> Iterator[None]:
    """Turn each library's not-found, denied and unreachable errors into one sentence."""
    try:
        yield
    except Exception as exc:
        kind = error_kind(exc)
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


def error_kind(exc: BaseException) -> str | None:
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
