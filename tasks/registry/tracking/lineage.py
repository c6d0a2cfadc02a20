"""Lineage: the training table logged as the run's input dataset, with MLflow's digest of it."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.types.utils import _infer_schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["log_training_data", "digest"]


class _UrlSource(DatasetSource):
    """An fsspec URL as a dataset source, for the schemes MLflow has no source class for."""

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def _get_source_type() -> str:
        return "fsspec"

    def load(self, dst_path: str | None = None) -> str:
        return self.url  # read it with tasks.data.storage.read_table

    @staticmethod
    def _can_resolve(raw_source: object) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: object) -> _UrlSource:
        return cls(str(raw_source))

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url}

    @classmethod  # DatasetSource declares dict[Any, Any]: whatever JSON MLflow read back
    def from_dict(cls, source_dict: dict[Any, Any]) -> _UrlSource:
        return cls(source_dict["url"])


def log_training_data(client: MlflowClient, run_id: str, frame: pd.DataFrame, source: str) -> str:
    """Lineage: where the training table came from and a digest of its content (returned).

    source must already be free of credentials (tasks.data.storage.public_url).
    """
    name = PurePosixPath(source.rstrip("/").split("?")[0]).name or "training_data"
    value = digest(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns of integer columns and missing values
        try:
            dataset = from_pandas(frame, source=source, name=name, digest=value)
        except MlflowException:
            # MLflow knows s3:// and local paths, not every fsspec scheme (az://, abfs://).
            dataset = from_pandas(frame, source=_UrlSource(source), name=name, digest=value)
        # MLflow infers the schema (a cached property) from every row: 17 s on an 800,000-row
        # table, a core taken from the search. The rows its digest reads name the same columns.
        with contextlib.suppress(Exception):  # as MLflow: no schema rather than no run
            dataset.__dict__["schema"] = _infer_schema(frame.head(MAX_ROWS))
    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")]
    # MLflow has no public way to the entity log_inputs takes (its fluent API uses this too).
    entity = dataset._to_mlflow_entity()  # noqa: SLF001
    client.log_inputs(run_id, datasets=[DatasetInput(dataset=entity, tags=tags)])
    client.set_tag(run_id, "automl.data_digest", dataset.digest)
    return dataset.digest


def digest(frame: pd.DataFrame) -> str:
    """MLflow's digest of a pandas table (mlflow.data.digest_utils.compute_pandas_digest: its
    first MAX_ROWS rows' string and numeric columns, its length, its column names), the same value,
    without calling type() on every cell of the whole table to find the string columns (2.4 s
    on an 800,000 x 21 table, against 0.02 s)."""
    head = frame.head(MAX_ROWS)
    strings = [c for i, c in enumerate(frame.columns) if _all_str(frame.iloc[:, i])]
    numbers = head.select_dtypes(include=[np.number]).columns
    head = head[pd.Index(strings).union(numbers)]
    return get_normalized_md5_digest(
        [pd.util.hash_pandas_object(head).values, np.int64(len(frame))]
        + [str(x).encode() for x in frame.columns]
    )


def _all_str(column: pd.Series) -> bool:
    """Every value a Python str (a missing value is not): what MLflow's type() map tests."""
    if not column.notna().all():
        return False
    if isinstance(column.dtype, pd.CategoricalDtype):
        return _all_str(pd.Series(column.cat.categories))
    return bool(pd.api.types.infer_dtype(column, skipna=False) == "string")
