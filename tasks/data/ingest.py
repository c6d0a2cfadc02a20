"""The ingest step: the training table, and the validation and test tables when given, read
through tasks.data.storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.data.credentials import storage_options
from tasks.data.storage import read_table

if TYPE_CHECKING:
    import pandas as pd

    from tasks.config import AutoMLConfig
    from tasks.types import Json

__all__ = ["TableSources", "Tables", "read_tables"]


@dataclass(frozen=True)
class TableSources:
    """Where the tables are, and how to reach them."""

    training: str
    validation: str | None = None
    test: str | None = None
    options: Json | None = None  # fsspec storage options (may hold credentials)
    secret: str | None = None  # a Prefect Secret block of storage options
    encoding: str | None = None  # of CSV and TSV tables; detected when None

    @classmethod
    def of(cls, config: AutoMLConfig) -> TableSources:
        return cls(config.training_data, config.validation_data, config.test_data,
                   config.storage_options, config.storage_secret, config.encoding)


@dataclass(frozen=True)
class Tables:
    train: pd.DataFrame
    validation: pd.DataFrame | None = None
    test: pd.DataFrame | None = None


def read_tables(sources: TableSources) -> Tables:
    # Resolved here, inside the step, so a Secret block's values never become a parameter.
    options = storage_options(sources.options, sources.secret)

    def optional(url: str | None, what: str) -> pd.DataFrame | None:
        return None if url is None else read_table(url, what=what, storage_options=options,
                                                   encoding=sources.encoding)

    return Tables(
        read_table(sources.training, what="training data", storage_options=options,
                   encoding=sources.encoding),
        optional(sources.validation, "validation data"),
        optional(sources.test, "test data"),
    )
