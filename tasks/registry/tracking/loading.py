"""Models loaded and versions resolved outside a training run: for `automl predict` and the
batch scoring flow. MLflow resolves models:/ through the process-wide registry URI, so these
resolve with an explicit client instead."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from tasks.errors import DataError
from tasks.registry.tracking.client import quiet_mlflow
from tasks.registry.tracking.versions import is_pending

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from tasks.types import Estimator

__all__ = ["load_logged_model", "load_logged_onnx", "resolve_registered"]


def load_logged_model(uri: str, tracking_uri: str | None) -> Estimator:
    """The pipeline behind MLflow's model URIs: models:/NAME/VERSION, models:/NAME/latest,
    models:/NAME/STAGE, models:/NAME@ALIAS or runs:/ID/PATH (any other models:/ form, as
    MLflow resolves it).

    MLflow resolves models:/ through the process-wide registry URI, so a registered name is
    resolved here with an explicit client instead.
    """
    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        source = uri
        ref = uri.removeprefix("models:/")
        if uri.startswith("models:/") and ("/" in ref or "@" in ref):
            source = _model_version_source(client, ref)
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
    version = _referenced(client, ref)
    return client.get_model_version_download_uri(version.name, version.version)


def _referenced(client: MlflowClient, ref: str) -> ModelVersion:
    name, at, alias = ref.partition("@")
    if at:
        return client.get_model_version_by_alias(name, alias)
    name, _, which = ref.partition("/")
    return _version(client, name, which)


def load_logged_onnx(uri: str, tracking_uri: str | None, path: str) -> bytes:
    """The ONNX graph logged beside a model (`path` in its run): models:/NAME/VERSION,
    models:/NAME@ALIAS or runs:/ID/...; a run whose export failed has none, and the sentence
    says so."""
    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        ref = uri.removeprefix("models:/")
        if uri.startswith("models:/"):
            found = _referenced(client, ref if ("/" in ref or "@" in ref) else f"{ref}/latest")
            run_id = str(found.run_id)
        else:
            run_id = uri.removeprefix("runs:/").partition("/")[0]
        tag = client.get_run(run_id).data.tags.get("onnx_export", "no export recorded")
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                        tracking_uri=tracking_uri)
        except (MlflowException, OSError):
            raise DataError(f"model '{uri}' has no ONNX graph ({tag}); score it without --onnx"
                            ) from None
        return Path(local).read_bytes()
    except MlflowException as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            f"model '{uri}' cannot be loaded from {tracking_uri}: {first}; "
            "check the name, version or alias, and --tracking-uri"
        ) from None


def _version(client: MlflowClient, name: str, which: str) -> ModelVersion:
    """A version by number, `latest` (the newest) or a stage name (Staging, Production...)."""
    if which.isdigit():
        return client.get_model_version(name, which)
    if which.lower() == "latest":
        return _newest(client, name)
    found: list[ModelVersion] = client.get_latest_versions(name, stages=[which])
    if not found:
        raise MlflowException(f"registered model '{name}' has no version in stage '{which}'")
    return found[0]


def resolve_registered(
    name: str, version: str | None, tracking_uri: str | None
) -> tuple[str, str, str]:
    """(models:/NAME/VERSION, VERSION, how it was chosen) for a registered model: the version or
    alias given, else the version with the alias `champion`, else the newest version."""
    quiet_mlflow()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        if version and version.isdigit():
            found, how = client.get_model_version(name, version), f"version {version}"
        elif version and version.lower() == "latest":
            found, how = _newest(client, name), "newest version"
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
    return _newest(client, name), "newest version: no version has the alias @champion yet"


def _newest(client: MlflowClient, name: str) -> ModelVersion:
    """The newest version that finished registering (a pending one may lack its aliases)."""
    versions = [v for v in client.search_model_versions(f"name = '{name}'") if not is_pending(v)]
    if not versions:
        raise MlflowException(f"registered model '{name}' has no versions")
    return max(versions, key=lambda v: int(v.version))
