"""One small exception tree: the CLI turns any AutoMLError into one line and exit code 2."""

from __future__ import annotations

__all__ = ["AutoMLError", "ConfigError", "DataError", "SearchError", "StorageError"]


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
