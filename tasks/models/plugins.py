"""Plugins: modules named in AUTOML_PLUGINS, imported by the flow and by every trial worker.

A plugin registers extra model families (`tasks.models.families.register_family`); it is imported
in the worker processes too, because they build the estimators.
"""

from __future__ import annotations

import importlib
import os

from tasks.errors import ConfigError

__all__ = ["load_plugins", "PLUGINS_VARIABLE"]

PLUGINS_VARIABLE = "AUTOML_PLUGINS"


def load_plugins() -> list[str]:
    names = [n.strip() for n in os.environ.get(PLUGINS_VARIABLE, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"{PLUGINS_VARIABLE} names module '{name}', which cannot be imported ({exc}); "
                "fix the name or put the module on PYTHONPATH"
            ) from None
    return names
