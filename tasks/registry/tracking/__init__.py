"""The only package that talks to MLflow, one module a responsibility: the client (client), a
training's runs (runs), the training table's lineage (lineage), model versions in the registry
(versions), and loading a model outside a training (loading). `Tracker` is all of a store as a
training run sees it.
"""

from __future__ import annotations

from tasks.registry.tracking.loading import (
    load_logged_model,
    load_logged_onnx,
    resolve_registered,
)
from tasks.registry.tracking.runs import RunLog
from tasks.registry.tracking.versions import ModelVersions

__all__ = ["Tracker", "load_logged_model", "load_logged_onnx", "resolve_registered"]


class Tracker(RunLog, ModelVersions):
    """One experiment's runs and the registry beside them, through one client."""
