"""The configuration's columns against a table's column names: one sentence when one is missing.

The flow's inspection (the whole table read) and the command line's early check (the header or
the Parquet schema alone, before Prefect starts) both refuse from here, in the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["require_column", "require_columns"]

SHOWN_COLUMNS = 30  # a wide table's sentence stays one readable line


def require_columns(
    columns: Sequence[object], source: str, target: str, weight_column: str | None = None
) -> None:
    """The training table has the target column, and the weights' column when one is named."""
    require_column(target, columns, source, "target column")
    if weight_column is not None:
        require_column(weight_column, columns, source, "weight_column")


def require_column(name: str, columns: Sequence[object], source: str, what: str) -> None:
    if name not in columns:
        listed = ", ".join(map(str, columns[:SHOWN_COLUMNS]))
        more = (f" (and {len(columns) - SHOWN_COLUMNS} more)"
                if len(columns) > SHOWN_COLUMNS else "")
        raise DataError(f"{what} '{name}' is not in '{source}'; columns are: {listed}{more}")
