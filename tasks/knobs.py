"""The knobs of one training run: Azure automated ML's names (so users know them), with the
types, bounds, defaults and descriptions Prefect validates and draws as the deployment's form.

AutoMLConfig (tasks.config) adds the checks that need code (the budget's floor, known encodings,
featurization's forms, the rules between knobs) and the values derived from the knobs: build that.
This class alone checks types and bounds only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.features.settings import FeaturizationSettings
from tasks.names import FamilyName, MetricName

__all__ = ["Knobs", "TaskType"]

TaskType = Literal["classification", "regression"]


class Knobs(BaseModel):
    """Every knob with its type, bounds and default; AutoMLConfig is the model to build."""

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
    # MetricName, FamilyName: text offered as the names' choices in the form (tasks.names).
    primary_metric: MetricName | None = Field(
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
        description="Memory the whole run may use (MB, the command's process and its trial "
        "workers): a trial whose estimate does not fit in what is left does not start, and one "
        "that pushes the run over it is stopped; the guardrail report lists them.",
    )
    max_memory_mb_per_iteration: float | None = Field(
        default=None, gt=0,
        description="Memory one trial's worker process may use (MB); a trial over it is "
        "stopped and recorded as failed.",
    )
    max_predict_ms_per_row: float | None = Field(
        default=None, gt=0,
        description="Slowest one-row prediction (milliseconds, raw row to prediction) a final "
        "model may take: slower trials stay on the leaderboard but are neither chosen nor "
        "ensembled, and an ensemble counts its members' times summed; the fastest trial when "
        "none is fast enough.",
    )
    task_runner: Literal["local", "dask"] = Field(
        default="local",
        description="local: trials in worker processes on this machine; dask: on a "
        "Dask cluster (dask_address, or a local cluster when empty).",
    )
    dask_address: str | None = Field(
        default=None, description="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786."
    )
    training_mode: Literal["non_distributed", "distributed"] = Field(
        default="non_distributed",
        description="distributed: LightGBM and XGBoost trained data-parallel on a Dask cluster "
        "(dask_address, else a local cluster of max_nodes worker processes) from Parquet read "
        "partition by partition, each worker holding only its own partitions; holdout "
        "validation, trials one after another, no ensemble; the registered model predicts on "
        "one machine. non_distributed: every trial on one machine's worker process (or a Dask "
        "worker's, task_runner=dask) with the whole table.",
    )
    max_nodes: int | None = Field(
        default=None, ge=1,
        description="Distributed training: the Dask workers to train on (a local cluster of this "
        "many worker processes; with dask_address, the workers to wait for). When empty, the "
        "cores this run may use, or the cluster's workers.",
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
    allowed_models: list[FamilyName] | None = Field(
        default=None, description="Only these model families."
    )
    blocked_models: list[FamilyName] | None = Field(
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
    enable_onnx_compatible_models: bool = Field(
        default=False,
        description="Only model families and featurization that export to ONNX (LightGBM, "
        "XGBoost, the forests and scikit-learn's models; dates as seconds, text target-encoded; "
        "no StackEnsemble, temperature or tuned threshold): the registered model then always "
        "has an onnx/model.onnx beside it. Off: the export is still tried when it takes little "
        "time (at most 5% of the run so far, or 3 s), and its outcome recorded.",
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
        # The example as code: Prefect's form reads descriptions as Markdown, which would turn the
        # URL, and the quote after it, into a link labelled http://127.0.0.1:9000&quot;}.
        description="Passed to fsspec when reading and writing tables, e.g. "
        '`{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}, '
        '"key": ..., "secret": ...}`; '
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
        '(e.g. `{"connection_string": ...}` or `{"key": ..., "secret": ...}`); merged under '
        "storage_options when the data is read, never recorded.",
    )
