"""The software a model was trained with: pinned requirements of the pickled pipeline, and every
installed distribution (logged as environment.json)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.types import Json

__all__ = ["model_requirements", "environment"]


def model_requirements() -> list[str]:
    """Pinned requirements of the pickled pipeline, by installed distribution name."""
    dists = metadata.packages_distributions()
    pins = []
    modules = ["sklearn", "pandas", "numpy", "scipy", "pyarrow", "lightgbm", "xgboost", "catboost"]
    # torch is optional (the nn extra) and imported only to fit or run a network: loaded here,
    # the model being registered has one (its predictions were just made).
    if "torch" in sys.modules:
        modules.append("torch")
    for module in modules:
        for dist in dists.get(module, [])[:1]:
            pins.append(f"{dist}=={metadata.version(dist)}")
    return pins


def environment() -> Json:
    """Python, platform and every installed distribution with its version."""
    packages = {
        d.metadata["Name"]: d.version for d in metadata.distributions() if d.metadata["Name"]
    }
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
    }
