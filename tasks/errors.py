"""One small exception tree: the CLI turns any AutoMLError into one line and exit code 2 (3 for a
SearchError), a ServiceError into one line and exit code 1."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["AutoMLError", "ConfigError", "DataError", "SearchError", "StorageError",
           "ServiceError", "causes", "first_line"]


class AutoMLError(Exception):
    """Root of every error a user can cause and fix; its message is the whole story."""


class ConfigError(AutoMLError, ValueError):
    """A knob has a value that cannot work (unknown metric, unknown model, bad combination)."""


class DataError(AutoMLError, ValueError):
    """The data cannot be read or does not fit the configuration."""


class SearchError(AutoMLError, RuntimeError):
    """The search produced no usable model (for example every trial failed)."""


class StorageError(AutoMLError, OSError):
    """Storage could not be reached (endpoint down, network, timeout): worth retrying, unlike
    the user's own mistakes."""


class ServiceError(RuntimeError):
    """A service or disk the run writes its results to failed, after retries, once the search was
    done: not the user's input, and not a bug. Its message says what failed and that --resume
    finishes the run from its kept trials."""


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then what caused it (raise ... from, or raised while handling), in turn."""
    seen: set[int] = set()
    err: BaseException | None = exc
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An error's first line (its type's name when it has no text), for a one-line message."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
