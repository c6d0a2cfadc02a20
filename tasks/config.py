"""The one typed configuration object: the knobs (tasks.knobs, Azure automated ML's names) with
the checks that need code, the values derived from them, and one-sentence errors for a user."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError, field_serializer, field_validator, model_validator

from tasks.budget import check_budget
from tasks.cores import available_cores
from tasks.data.encodings import UNKNOWN_ENCODING, known_encoding
from tasks.data.redact import mask_secrets
from tasks.errors import ConfigError
from tasks.features.settings import FeaturizationSettings, parse_featurization
from tasks.knobs import Knobs, TaskType

if TYPE_CHECKING:
    from tasks.features.settings import ColumnOverride

__all__ = ["AutoMLConfig", "parse_config", "default_tracking_uri", "TaskType"]


class AutoMLConfig(Knobs):
    """Everything one training run needs. Prefect draws this as the deployment's form."""

    @model_validator(mode="before")
    @classmethod
    def _ordered_when_counted(cls, values: object) -> object:
        # "When iterations ends the run": asked for by giving iterations, unless said otherwise.
        if isinstance(values, dict) and values.get("deterministic") is None:
            return {**values, "deterministic": "iterations" in values}
        return values

    @field_serializer("storage_options", when_used="json")
    def _masked(self, value: dict[str, object] | None) -> dict[str, object] | None:
        # JSON is what Prefect stores as the flow run's parameters: no credentials there.
        return mask_secrets(value)

    @field_validator("featurization", mode="before")
    @classmethod
    def _featurization(cls, value: object) -> str | FeaturizationSettings:
        return parse_featurization(value)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is not None and not known_encoding(value):
            raise ValueError(UNKNOWN_ENCODING)
        return value

    @field_validator("experiment_timeout_minutes")
    @classmethod
    def _budget_floor(cls, value: float) -> float:
        check_budget(value)
        return value

    @model_validator(mode="after")
    def _exclusive_choices(self) -> AutoMLConfig:
        chosen = [
            name
            for name in ("validation_data", "validation_size", "n_cross_validations")
            if getattr(self, name) is not None
        ]
        if len(chosen) > 1:
            raise ValueError(
                f"choose one validation scheme, got {' and '.join(chosen)}; "
                "drop all but one of them"
            )
        if self.test_data is not None and self.test_size is not None:
            raise ValueError("choose test_data or test_size, not both")
        distributed = self.training_mode == "distributed"
        if self.dask_address is not None and self.task_runner != "dask" and not distributed:
            raise ValueError(
                f"dask_address {self.dask_address!r} needs task_runner='dask' (--task-runner dask) "
                "or training_mode='distributed'"
            )
        if distributed:
            _check_distributed(self)
        elif self.max_nodes is not None:
            raise ValueError(f"max_nodes {self.max_nodes} applies to distributed training; add "
                             "training_mode='distributed' (--training-mode distributed) or drop it")
        return self

    @property
    def concurrency(self) -> int:
        return self.max_concurrent_iterations or available_cores()

    @property
    def threads_per_trial(self) -> int:
        if self.max_cores_per_iteration > 0:
            return self.max_cores_per_iteration
        if self.deterministic:
            # A booster's sums depend on how its threads split the rows: the same trial gives
            # the same model only on the same thread count, whatever the concurrency.
            return 1
        return max(1, available_cores() // self.concurrency)

    @property
    def featurize(self) -> bool:
        """Featurization builds the preprocessing: "auto" and a mapping of overrides, not "off"."""
        return self.featurization != "off"

    @property
    def column_overrides(self) -> dict[str, ColumnOverride]:
        settings = self.featurization
        if isinstance(settings, FeaturizationSettings):
            return dict(settings.column_overrides)
        return {}

    @property
    def registered_model_name(self) -> str:
        return self.model_name or self.experiment_name

    @property
    def workdir_path(self) -> Path:
        return Path(self.workdir).resolve()

    @property
    def embedded_tracking(self) -> bool:
        # The workdir's own SQLite file named explicitly (as the deployments' job variables do)
        # is still the embedded store: its artifacts go beside it.
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return not uri or uri == f"sqlite:///{self.workdir_path / 'mlflow.db'}"

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or default_tracking_uri(self.workdir)


# Tables distributed training cannot read: it reads Parquet partition by partition.
_NOT_PARQUET = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".xlsx", ".xls", ".feather",
                ".arrow", ".orc", ".gz", ".bz2", ".zip", ".zst", ".xz")


def _check_distributed(config: AutoMLConfig) -> None:
    """What distributed training does not do, refused before anything starts."""
    refused = {
        "n_cross_validations": "it validates on a holdout: give validation_size or "
        "validation_data instead",
        "resume": "its trials are not kept for a resume: start the run again",
        "weight_column": "its boosters are trained without weights: drop it",
    }
    for name, why in refused.items():
        value = getattr(config, name)
        if value not in (None, False):
            raise ValueError(f"{name}={value!r} is not available with "
                             f"training_mode='distributed': {why}")
    for name in ("training_data", "validation_data", "test_data"):
        url = getattr(config, name)
        if url and url.lower().rstrip("/").endswith(_NOT_PARQUET):
            raise ValueError(f"{name} '{url}' is not Parquet; training_mode='distributed' reads "
                             "Parquet (a file, a folder or a prefix of part files): convert it, "
                             "e.g. with pandas' to_parquet, or train without distributed mode")


def default_tracking_uri(workdir: str = "automl-runs") -> str:
    """MLFLOW_TRACKING_URI when set, else the embedded SQLite store in the working folder."""
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    return tracking or f"sqlite:///{Path(workdir).resolve() / 'mlflow.db'}"


def parse_config(**values: object) -> AutoMLConfig:
    """Build the config, turning pydantic's report into one sentence a user can act on."""
    try:
        # model_validate: the same validation as AutoMLConfig(**values), for values of any type.
        return AutoMLConfig.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if where.startswith("storage_options"):
            # The value may hold credentials: name the knob, never echo it.
            raise ConfigError(f"{where} is invalid: {message}.") from None
        if where:
            raise ConfigError(f"{where}={err['input']!r} is invalid: {message}.") from None
        raise ConfigError(f"invalid configuration: {message}.") from None
