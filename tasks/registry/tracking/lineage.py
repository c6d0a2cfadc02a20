"""Lineage: the training table logged as the run's input dataset, with MLflow's digest of it."""

from __future__ import annotations

import warnings
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import DatasetInput, InputTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

__all__ = ["log_training_data"]


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns of integer columns and missing values
        try:
            dataset = from_pandas(frame, source=source, name=name)
        except MlflowException:
            # MLflow knows s3:// and local paths, not every fsspec scheme (az://, abfs://).
            dataset = from_pandas(frame, source=_UrlSource(source), name=name)
    tags = [InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")]
    # MLflow has no public way to the entity log_inputs takes (its fluent API uses this too).
    entity = dataset._to_mlflow_entity()  # noqa: SLF001
    client.log_inputs(run_id, datasets=[DatasetInput(dataset=entity, tags=tags)])
    client.set_tag(run_id, "automl.data_digest", dataset.digest)
    return dataset.digest
