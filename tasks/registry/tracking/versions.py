"""The registry side: a fitted model logged (an MLflow sklearn model and model.pkl) and
registered as a new version, versions found, loaded, tagged, aliased and deleted."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

import tasks
from tasks.features.preprocess import required_columns
from tasks.registry.environment import model_requirements
from tasks.registry.records import RegisteredModel
from tasks.registry.tracking.client import Connected, text

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from tasks.types import Estimator

__all__ = ["ModelVersions", "PKL_NAME", "STATE_TAG", "PENDING", "COMPLETE", "is_pending"]

PKL_NAME = "model.pkl"
# A version is created "pending" and marked "complete" once its aliases and tags are settled: a
# run that loses the server in between leaves a pending version, which loaders skip and the same
# run's retry or --resume deletes.
STATE_TAG = "automl.registration"
PENDING, COMPLETE = "pending", "complete"
PREVIOUS_TAG = "automl.previous."  # + alias: the version that held it before this one


def is_pending(version: ModelVersion) -> bool:
    return (version.tags or {}).get(STATE_TAG) == PENDING


class ModelVersions(Connected):
    def register(self, run_id: str, model: Estimator, example: pd.DataFrame, name: str,
                 previous: dict[str, str | None] | None = None) -> RegisteredModel:
        """Log an MLflow sklearn model and model.pkl, then register a pending version: last, so
        a failure before it leaves nothing in the registry. previous: alias -> the version that
        holds it now, kept on the version so a later clean-up can put it back."""
        self._log_model(run_id, model, example)
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        tags = {"run_id": run_id, STATE_TAG: PENDING}
        tags.update({f"{PREVIOUS_TAG}{alias}": held or "none"
                     for alias, held in (previous or {}).items()})
        version = self.client.create_model_version(
            name, source=f"{artifact_uri}/model", run_id=run_id, tags=tags
        )
        return self.registered(name, str(version.version), run_id, artifact_uri)

    def registered(self, name: str, version: str, run_id: str,
                   artifact_uri: str | None = None) -> RegisteredModel:
        """A registered version of a run's model, as the flow reports it."""
        artifact_uri = artifact_uri or self.client.get_run(run_id).info.artifact_uri
        pkl_uri = f"{artifact_uri}/{PKL_NAME}"
        return RegisteredModel(name, version, f"models:/{name}/{version}",
                               pkl_uri.removeprefix("file://"))

    def _log_model(self, run_id: str, model: Estimator, example: pd.DataFrame) -> None:
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
            self.client.set_model_version_tag(name, version, key, text(value))

    def describe_version(self, name: str, version: str, text: str) -> None:
        self.client.update_model_version(name, version, description=text)

    def delete_version(self, name: str, version: str) -> None:
        self.client.delete_model_version(name, version)

    def mark_complete(self, name: str, version: str) -> None:
        self.client.set_model_version_tag(name, version, STATE_TAG, COMPLETE)

    def versions_of_run(self, name: str, run_id: str) -> list[ModelVersion]:
        """The versions of `name` a run registered, oldest first."""
        try:
            found = self.client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        return sorted(found, key=lambda v: int(v.version))

    def withdraw(self, name: str, number: str,
                 before: dict[str, str | None] | None = None) -> None:
        """Delete a version that never completed, first putting back each alias it took
        (before, else what its tags recorded) unless another run has moved it since."""
        version = self.client.get_model_version(name, number)  # its aliases as they are now
        tags = version.tags or {}
        for alias in version.aliases or []:
            held = (before or {}).get(alias, tags.get(f"{PREVIOUS_TAG}{alias}"))
            if held and held != "none":
                self.set_alias(name, alias, held)
        self.delete_version(name, number)  # the aliases still on it go with it
