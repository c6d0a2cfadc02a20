"""The command's early refusal of a wrong column: the tables' column names read alone (a Parquet
schema, a CSV header; no rows), checked in the flow's own words before Prefect is imported or its
temporary API started. Those took about 7 s of every such refusal, the read takes well under one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.config import AutoMLConfig

__all__ = ["check_columns"]


def check_columns(config: AutoMLConfig) -> None:
    """Raise the flow's DataError when a table cannot be read, the training table lacks the
    target or the weight column, or a validation or test table lacks the target.

    Whatever the names alone cannot tell is left to the flow, as before: tables reached with a
    Prefect Secret block's credentials (on the Prefect API), formats without a cheap header
    (JSON Lines), and storage that does not answer (the flow's read retries it).
    """
    if config.storage_secret:
        return
    from tasks.data.columns import require_column, require_columns
    from tasks.data.storage import read_columns
    from tasks.errors import StorageError

    tables = {"training data": config.training_data, "validation data": config.validation_data,
              "test data": config.test_data}
    try:
        # All read first, in the flow's order: a table that cannot be read is said first there.
        names = {what: read_columns(url, what=what, storage_options=config.storage_options,
                                    encoding=config.encoding)
                 for what, url in tables.items() if url is not None}
    except StorageError:
        return
    if (training := names["training data"]) is not None:
        require_columns(training, config.training_data, config.target, config.weight_column)
    for what, url in tables.items():
        if what != "training data" and url is not None and (other := names[what]) is not None:
            require_column(config.target, other, url, "target column")
