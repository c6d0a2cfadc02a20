"""Module paths of earlier releases, for the models they pickled.

A pickled pipeline names each class and function by module path (``tasks.estimators``,
``tasks.columns``). Those modules have moved; users' registries still hold such models. An old
path is imported on demand as a module that holds the same names, taken from where they live
now, so unpickling finds them. The import system asks this finder only after the real modules
were not found: it never shadows a module that exists.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MOVED", "install"]

# old module -> the modules its names live in now, searched in order
MOVED: dict[str, tuple[str, ...]] = {
    "tasks.columns": ("tasks.features.columns", "tasks.features.encoders"),
    "tasks.estimators": ("tasks.models.wrappers", "tasks.models.ensembles",
                         "tasks.models.boosting"),
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name, f"Names once in {spec.name}, now in "
                                  f"{', '.join(MOVED[spec.name])}.")
        for name in reversed(MOVED[spec.name]):  # the first module's name wins a clash
            module.__dict__.update(
                {k: v for k, v in vars(importlib.import_module(name)).items()
                 if not k.startswith("__")})
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def install() -> None:
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.append(_OldPaths())
