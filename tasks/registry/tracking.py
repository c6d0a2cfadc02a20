"""The one module that talks to MLflow: the parent run, a child run per trial, the final model.

Everything goes through an MlflowClient with explicit run ids: the fluent API keeps process-wide
state (an active run, and mlflow.set_tracking_uri even rewrites MLFLOW_TRACKING_URI), which is
wrong for a worker that runs several flows, possibly at once.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import time
import warnings
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.pandas_dataset import from_pandas
from mlflow.entities import DatasetInput, InputTag, Param, RunStatus, RunTag
from mlflow.entities import Metric as MlflowMetric
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

import tasks
from tasks.errors import DataError
from tasks.features.preprocess import required_columns
from tasks.registry.environment import environment, model_requirements
from tasks.registry.records import ParentRun, RegisteredModel

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from tasks.search.candidates import TrialResult
    from tasks.types import Estimator, Json

__all__ = ["Tracker", "resolve_registered", "load_logged_model"]

PKL_NAME = "model.pkl"


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


class Tracker:
    def __init__(self, tracking_uri: str, experiment_name: str, artifact_root: Path | None) -> None:
        _quiet_mlflow()
        # Without an explicit registry URI the client would use the process-wide one.
        registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is None:
            location = artifact_root.as_uri() if artifact_root else None
            self.experiment_id = self.client.create_experiment(experiment_name, location)
        else:
            self.experiment_id = experiment.experiment_id

    def start_parent(self, run_name: str, params: Json, tags: dict[str, str], *,
                     training: pd.DataFrame | None = None, source: str = "",
                     checks: list[dict[str, str]] | None = None, report: str = "") -> ParentRun:
        """Open a training run: its parameters, the configuration and software as artifacts,
        the training table's lineage, the guardrail report."""
        run_id = self.start(run_name, params, tags)
        try:
            self.log_context(run_id, params)
            digest = None if training is None else self.log_training_data(run_id, training,
                                                                          source)
            if checks is not None:
                self.log_report(run_id, checks, report)
        except BaseException:
            self.finish(run_id, ok=False)  # never left RUNNING: a retry opens another
            raise
        return ParentRun(run_id, dict(params), digest)

    def reopen_parent(self, run_id: str, interrupted: list[int]) -> ParentRun:
        """An interrupted run running again, without the child runs of trials to be re-run."""
        self.reopen(run_id, interrupted)
        parent = self.client.get_run(run_id).data
        return ParentRun(run_id, dict(parent.params), parent.tags.get("automl.data_digest"))

    def start(self, run_name: str, params: Json, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        run_id: str = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, _text(v)) for k, v in params.items()])
        return run_id

    def log_training_data(self, run_id: str, frame: pd.DataFrame, source: str) -> str:
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
        self.client.log_inputs(run_id, datasets=[DatasetInput(dataset=entity, tags=tags)])
        self.client.set_tag(run_id, "automl.data_digest", dataset.digest)
        return dataset.digest

    def log_context(self, run_id: str, config: Json) -> None:
        """The configuration as given (credentials already removed) and the software it ran on."""
        self.client.log_dict(run_id, config, "config.json")
        self.client.log_dict(run_id, environment(), "environment.json")

    def log_report(self, run_id: str, checks: list[dict[str, str]], text: str) -> None:
        self.client.log_dict(run_id, {"checks": checks}, "guardrails.json")
        self.client.log_text(run_id, text + "\n", "guardrails.txt")
        alerted = [c["name"] for c in checks if c["status"] == "alerted"]
        self.client.set_tag(run_id, "guardrails_alerted", ", ".join(alerted) or "none")

    def log_trial(
        self, parent_id: str, result: TrialResult, best: dict[str, float], step: int = 0
    ) -> str:
        """One child run (three calls: create, one batch, terminate), and the parent's
        best-so-far point when there is one (metric name -> value at `step`: how many trials had
        finished before this one, as trials running side by side finish out of number order)."""
        c = result.candidate
        tags = {"mlflow.parentRunId": parent_id, "family": c.family, "trial_number": str(c.number),
                "status": result.status}
        if result.worker:
            tags["worker"] = result.worker
        if result.duplicate_of is not None:
            tags["duplicate_of"] = str(result.duplicate_of)
        if result.error:
            tags["error"] = result.error[:5000]
            tags["failure_reason"] = result.reason or "error"
        run = self.client.create_run(self.experiment_id, run_name=c.label, tags=tags)
        run_id: str = run.info.run_id
        now = int(time.time() * 1000)
        values = {
            **result.metrics,
            "fit_seconds": result.fit_seconds,
            "predict_seconds": result.predict_seconds,
        }
        if result.model_bytes:
            values["model_size_bytes"] = result.model_bytes
        # The primary metric on each fold it ran, step = fold: a pruned trial has only these.
        folds = [MlflowMetric("fold_score", float(v), now, step)
                 for step, v in enumerate(result.fold_scores) if np.isfinite(v)]
        self.client.log_batch(
            run_id,
            metrics=[MlflowMetric(k, float(v), now, 0) for k, v in values.items()] + folds,
            params=[Param(k, _text(v)) for k, v in {
                "family": c.family, **c.params,
                **{f"refit_{k}": v for k, v in result.refit_params.items()},
            }.items()],
        )
        # A pruned trial ran as it should and was stopped on purpose: finished, tagged "pruned".
        status = RunStatus.FAILED if result.status == "failed" else RunStatus.FINISHED
        self.client.set_terminated(run_id, RunStatus.to_string(status))
        if best:
            self.client.log_batch(
                parent_id, metrics=[MlflowMetric(k, float(v), now, step) for k, v in best.items()]
            )
        return run_id

    def log_summary(self, run_id: str, metrics: dict[str, float], tags: dict[str, str],
                    leaderboard: pd.DataFrame) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[MlflowMetric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        # log_table appends to a table already there: a retried step must not repeat the rows.
        if not any(f.path == "leaderboard.json" for f in self.client.list_artifacts(run_id)):
            self.client.log_table(run_id, data=leaderboard, artifact_file="leaderboard.json")

    def log_folder(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_outcome(self, run_id: str, metrics: dict[str, float], tags: dict[str, str],
                    step: int = 0) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[MlflowMetric(k, float(v), now, step)
                                               for k, v in metrics.items()],
                              tags=[RunTag(k, v) for k, v in tags.items()])

    def register(self, run_id: str, model: Estimator, example: pd.DataFrame,
                 name: str) -> RegisteredModel:
        """Log an MLflow sklearn model and model.pkl, then register a version: last, so a
        failure before it leaves nothing in the registry."""
        # The signature names only the columns the model reads (dropped ones are not required);
        # integer columns are declared as floats, so rows with missing values pass the schema.
        example = example[required_columns(model)]
        example = example.astype(dict.fromkeys(example.select_dtypes("integer").columns, float))
        output = model.predict(example)
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            # We pickle on purpose (the .pkl is the product); MLflow warns about it every time.
            warnings.simplefilter("ignore")
            mlflow.sklearn.save_model(
                model,
                f"{tmp}/model",
                serialization_format="pickle",
                signature=infer_signature(example, output),
                input_example=example,
                pip_requirements=model_requirements(),
                code_paths=[str(Path(tasks.__file__).parent)],
            )
            self.client.log_artifacts(run_id, f"{tmp}/model", "model")
            # The run's model.pkl is the MLflow model's own pickle, logged again: one
            # serialization for both (a 500 MB ensemble took seconds to pickle).
            self.client.log_artifact(run_id, f"{tmp}/model/{PKL_NAME}")
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            name, source=f"{artifact_uri}/model", run_id=run_id, tags={"run_id": run_id}
        )
        pkl_uri = f"{artifact_uri}/{PKL_NAME}"
        if pkl_uri.startswith("file://"):
            pkl_uri = pkl_uri.removeprefix("file://")
        number = str(version.version)
        return RegisteredModel(name, number, f"models:/{name}/{version.version}", pkl_uri)

    def reopen(self, run_id: str, interrupted: list[int]) -> None:
        """Mark a parent run running again, and drop the child runs of trials to be re-run."""
        self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        self.client.set_tag(run_id, "resumed", "true")
        if not interrupted:
            return
        numbers = {str(n) for n in interrupted}
        children = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
            max_results=50_000,
        )
        for child in children:
            if child.data.tags.get("trial_number") in numbers:
                self.client.delete_run(child.info.run_id)

    def version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def load_version(self, version: ModelVersion) -> Estimator:
        source = self.client.get_model_version_download_uri(version.name, version.version)
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=self.tracking_uri
            )
            return mlflow.sklearn.load_model(local)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, _text(value))

    def delete_version(self, name: str, version: str) -> None:
        self.client.delete_model_version(name, version)

    def finish(self, run_id: str, ok: bool) -> None:
        status = RunStatus.FINISHED if ok else RunStatus.FAILED
        self.client.set_terminated(run_id, RunStatus.to_string(status))


def load_logged_model(uri: str, tracking_uri: str | None) -> Estimator:
    """The pipeline behind models:/NAME/VERSION, models:/NAME@ALIAS or runs:/ID/PATH.

    MLflow resolves models:/ through the process-wide registry URI, so it is resolved here
    with an explicit client instead.
    """
    _quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        source = uri
        if uri.startswith("models:/"):
            source = _model_version_source(client, uri.removeprefix("models:/"))
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri)
        if local.endswith(".pkl"):
            return pickle.loads(Path(local).read_bytes())  # noqa: S301 - the user's own model
        return mlflow.sklearn.load_model(local)
    except (MlflowException, OSError) as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            f"model '{uri}' cannot be loaded from {tracking_uri}: {first}; "
            "check the name, version or alias, and --tracking-uri"
        ) from None


def _model_version_source(client: MlflowClient, ref: str) -> str:
    name, at, alias = ref.partition("@")
    if at:
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, _, number = ref.partition("/")
        version = client.get_model_version(name, number)
    return client.get_model_version_download_uri(version.name, version.version)


def resolve_registered(
    name: str, version: str | None, tracking_uri: str | None
) -> tuple[str, str, str]:
    """(models:/NAME/VERSION, VERSION, how it was chosen) for a registered model: the version or
    alias given, else the version with the alias `champion`, else the newest version."""
    _quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if version and version.isdigit():
            found, how = client.get_model_version(name, version), f"version {version}"
        elif version:
            found, how = client.get_model_version_by_alias(name, version), f"alias @{version}"
        else:
            found, how = _champion_or_newest(client, name)
    except MlflowException as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            f"registered model '{name}' (version {version or 'champion'}) was not found in "
            f"{tracking_uri}: {first}; check the model name, the version or alias, and the "
            "tracking URI"
        ) from None
    return f"models:/{found.name}/{found.version}", str(found.version), how


def _champion_or_newest(client: MlflowClient, name: str) -> tuple[ModelVersion, str]:
    model = client.get_registered_model(name)  # raises when the name is unknown
    if "champion" in (model.aliases or {}):
        return client.get_model_version_by_alias(name, "champion"), "alias @champion"
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise MlflowException(f"registered model '{name}' has no versions")
    newest = max(versions, key=lambda v: int(v.version))
    return newest, "newest version: no version has the alias @champion yet"


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs
    # MLflow logs store creation and migrations at INFO on every new database.
    for name in ("mlflow", "mlflow.sklearn", "mlflow.models", "mlflow.store", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _text(value: object) -> str:
    return str(value)[:6000]

