"""The one typed configuration object. Knob names are Azure automated ML's, so users know them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from tasks.budget import check_budget
from tasks.cores import available_cores
from tasks.data.encodings import UNKNOWN_ENCODING, known_encoding
from tasks.data.redact import mask_secrets
from tasks.errors import ConfigError
from tasks.features.settings import FeaturizationSettings, parse_featurization

if TYPE_CHECKING:
    from tasks.features.settings import ColumnOverride

__all__ = ["AutoMLConfig", "parse_config", "default_tracking_uri", "TaskType"]

TaskType = Literal["classification", "regression"]


class AutoMLConfig(BaseModel):
    """Everything one training run needs. Prefect draws this as the deployment's form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training_data: str = Field(
        description="Path or URL (file://, s3://, az://) of the labelled table."
    )
    target: str = Field(description="Name of the column to predict.")
    task: TaskType | None = Field(
        default=None,
        description="classification or regression; inferred from the target when empty.",
    )
    validation_data: str | None = Field(default=None, description="A separate validation table.")
    validation_size: float | None = Field(
        default=None, gt=0, lt=1,
        description="Fraction of the training data held out for validation.",
    )
    n_cross_validations: int | None = Field(
        default=None, ge=2, le=50, description="Number of cross-validation folds."
    )
    test_data: str | None = Field(
        default=None, description="A test table scored once by the final model."
    )
    test_size: float | None = Field(
        default=None, gt=0, lt=1,
        description="Fraction of the training data kept aside as a test set.",
    )
    primary_metric: str | None = Field(
        default=None,
        description="Metric the search optimises (AUC_weighted for classification, "
        "normalized_root_mean_squared_error for regression when empty).",
    )
    iterations: int = Field(default=1000, ge=1, description="Maximum number of trials.")
    experiment_timeout_minutes: float = Field(
        default=360, gt=0,
        description="Time budget of the whole run, refit included (fractions allowed).",
    )
    iteration_timeout_minutes: float | None = Field(
        default=None, gt=0, description="Time limit of one trial."
    )
    max_concurrent_iterations: int | None = Field(
        default=None, ge=1,
        description="Trials evaluated at once, each in its own worker process "
        "(when empty, the cores this run may use: its CPU affinity, capped by its cgroup's CPU "
        "quota).",
    )
    max_cores_per_iteration: int = Field(
        default=-1, ge=-1,
        description="Threads one trial may use (-1: the cores divided by the "
        "concurrent trials; 1 in a deterministic run).",
    )
    max_memory_mb: float | None = Field(
        default=None, gt=0,
        description="Memory one trial's worker process may use; a trial over it is "
        "stopped and recorded as failed.",
    )
    task_runner: Literal["local", "dask"] = Field(
        default="local",
        description="local: trials in worker processes on this machine; dask: on a "
        "Dask cluster (dask_address, or a local cluster when empty).",
    )
    dask_address: str | None = Field(
        default=None, description="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786."
    )
    optuna_storage: str | None = Field(
        default=None,
        description="Optuna RDB storage URL (postgresql://, mysql://, sqlite:///) for "
        "studies shared between machines; a journal file in workdir when empty.",
    )
    resume: bool = Field(
        default=False,
        description="Continue this experiment's interrupted run (same data) instead of "
        "starting a new one.",
    )
    experiment_exit_score: float | None = Field(
        default=None, description="Stop as soon as a trial reaches this primary-metric value."
    )
    enable_early_stopping: bool = Field(
        default=True, description="Stop after early_stopping_patience trials without improvement."
    )
    early_stopping_patience: int = Field(
        default=20, ge=1,
        description="Sampler trials without improvement (the first points not counted).",
    )
    enable_pruning: bool = Field(
        default=True,
        description="Stop a trial after a fold where it is worse than the median of the "
        "finished trials there (cheap fidelity first).",
    )
    deterministic: bool = Field(
        default=False,
        description="Results reach the sampler in the order trials were asked, so the same "
        "data, seed and iterations give the same model however many trials run at once (up to "
        "8): on when iterations is given. A time limit that ends the run first changes how many "
        "trials run.",
    )
    sampler: Literal["tpe", "random"] = Field(
        default="tpe",
        description="tpe: Bayesian optimisation (multivariate TPE, constant liar for "
        "parallel trials); random: independent random draws, the same sequence of trials whatever "
        "the concurrency (for comparisons).",
    )
    allowed_models: list[str] | None = Field(
        default=None, description="Only these model families."
    )
    blocked_models: list[str] | None = Field(
        default=None, description="Never these model families."
    )
    featurization: Literal["auto", "off"] | FeaturizationSettings = Field(
        default="auto",
        description="auto: detect column roles, impute, encode, expand dates, vectorise text, "
        "scale where the model needs it; off: numeric columns used as given; or "
        "{column_overrides: {column: {role: numeric|categorical|text|datetime|drop, "
        "imputer: mean|median|most_frequent|constant}}} for auto with overrides.",
    )
    weight_column: str | None = Field(default=None, description="Column of sample weights.")
    positive_label: str | None = Field(
        default=None, description="Positive class for binary metrics."
    )
    enable_ensembling: bool = Field(
        default=True, description="Try a greedy ensemble of the best trials."
    )
    ensemble_iterations: int = Field(
        default=15, ge=1, description="Rounds of ensemble selection."
    )
    random_state: int = Field(
        default=0, description="Seed of the split, the sampler and the models."
    )
    experiment_name: str = Field(
        default="automl", min_length=1, description="MLflow experiment name."
    )
    model_name: str | None = Field(
        default=None, description="Registered model name (the experiment name when empty)."
    )
    promote: bool = Field(
        default=True,
        description="Move the registry alias 'champion' to the new version when it beats the "
        "current champion on this run's held-out data (else it gets 'challenger'); "
        "false: register without touching any alias.",
    )
    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI (a SQLite file in workdir when empty)."
    )
    workdir: str = Field(
        default="automl-runs",
        description="Folder for the embedded MLflow store and the Optuna study.",
    )
    # A JSON object, as tasks.types.Json; spelled out: importing tasks.types loads numpy and pandas,
    # which reading the configuration does not need.
    storage_options: dict[str, object] | None = Field(
        default=None,
        description="Passed to fsspec when reading and writing tables, e.g. "
        '{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}, "key": ..., "secret": ...}; '
        "credentials otherwise come from the usual places (AWS_* or AZURE_STORAGE_* variables, "
        "~/.aws, storage_secret). "
        "Never recorded in MLflow; credential values are masked when the config is serialised.",
    )

    encoding: str | None = Field(
        default=None,
        description="Text encoding of CSV and TSV tables (utf-8, cp1252, latin-1, utf-16...); "
        "detected when empty.",
    )

    storage_secret: str | None = Field(
        default=None, min_length=1,
        description="Name of a Prefect Secret block holding a JSON object of storage options "
        '(e.g. {"connection_string": ...} or {"key": ..., "secret": ...}); merged under '
        "storage_options when the data is read, never recorded.",
    )

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
        if self.dask_address is not None and self.task_runner != "dask":
            raise ValueError(
                f"dask_address {self.dask_address!r} needs task_runner='dask' (--task-runner dask)"
            )
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
