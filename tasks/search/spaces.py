"""Search spaces as data: one YAML file per model family, in Optuna's distribution vocabulary.

A file looks like::

    fixed:                      # passed to the estimator as they are
      n_estimators: 300
    params:                     # searched; type is float | int | categorical
      learning_rate: {type: float, low: 0.01, high: 0.3, log: true}
    defaults:                   # complete points tried first, before the sampler's own
      - {learning_rate: 0.1}

Everything is checked when loaded, so a typo fails before the first trial, naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, TypeVar

import yaml

from tasks.errors import ConfigError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from tasks.types import Params

__all__ = ["SearchSpace", "fixed_settings", "load_space", "parse_space", "register_space",
           "validate_point", "parse_distributed_spaces", "DISTRIBUTED"]

# search_spaces/distributed.yaml: the spaces of distributed training (tasks.distributed), one
# mapping per family in the format of a family's own file.
DISTRIBUTED = "distributed"

_TYPES = ("float", "int", "categorical")
_KEYS = {"fixed", "params", "defaults"}

_T = TypeVar("_T")


@dataclass(frozen=True)
class SearchSpace:
    name: str
    params: dict[str, BaseDistribution]
    fixed: dict[str, object] = field(default_factory=dict)  # passed to the estimator as given
    defaults: tuple[Params, ...] = ()


_REGISTERED: dict[str, SearchSpace] = {}


def register_space(stem: str, document: object) -> SearchSpace:
    """A plugin family's space, given as the mapping a YAML file would hold."""
    _REGISTERED[stem] = parse_space(stem, document)
    load_space.cache_clear()
    fixed_settings.cache_clear()
    return _REGISTERED[stem]


@cache
def load_space(stem: str) -> SearchSpace:
    """Read search_spaces/<stem>.yaml (once per process)."""
    if stem in _REGISTERED:
        return _REGISTERED[stem]
    return parse_space(stem, _document(stem))


@cache
def parse_distributed_spaces() -> dict[str, SearchSpace]:
    """The families of distributed training and their spaces."""
    document = _document(DISTRIBUTED)
    if not isinstance(document, dict):
        raise ConfigError(f"search_spaces/{DISTRIBUTED}.yaml must map families to their spaces")
    return {family: parse_space(f"{DISTRIBUTED}.{family}", space)
            for family, space in document.items()}


@cache
def fixed_settings(stem: str) -> dict[str, object]:
    """The family's fixed estimator settings, read without Optuna: what a trial worker, which
    only builds models, needs of the file (the search checked the whole file before)."""
    if stem in _REGISTERED:
        return dict(_REGISTERED[stem].fixed)
    document = _document(stem)
    return dict(document.get("fixed") or {}) if isinstance(document, dict) else {}


def _document(stem: str) -> object:
    source = resources.files("search_spaces").joinpath(f"{stem}.yaml")
    try:
        text = source.read_text()
    except FileNotFoundError:
        raise ConfigError(f"search space file search_spaces/{stem}.yaml does not exist") from None
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"search_spaces/{stem}.yaml is not valid YAML: {exc}") from None
    return document


def parse_space(stem: str, document: object) -> SearchSpace:
    where = f"search_spaces/{stem}.yaml"
    if not isinstance(document, dict) or set(document) - _KEYS:
        extra = sorted(set(document) - _KEYS) if isinstance(document, dict) else document
        raise ConfigError(f"{where}: unexpected {extra!r}; the keys are {', '.join(sorted(_KEYS))}")
    for key, kind in (("params", dict), ("fixed", dict), ("defaults", list)):
        if not isinstance(document.get(key) or kind(), kind):
            raise ConfigError(
                f"{where}: '{key}' must be a {'mapping' if kind is dict else 'list'}, "
                f"got {document[key]!r}"
            )
    params = {
        name: _distribution(where, name, spec)
        for name, spec in (document.get("params") or {}).items()
    }
    fixed = dict(document.get("fixed") or {})
    overlap = set(fixed) & set(params)
    if overlap:
        raise ConfigError(f"{where}: {sorted(overlap)} are both fixed and searched; keep one")
    defaults = tuple(
        _default(where, i, point, params) for i, point in enumerate(document.get("defaults") or [])
    )
    return SearchSpace(stem, params, fixed, defaults)


def _distribution(where: str, name: str, spec: object) -> BaseDistribution:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
        raise ConfigError(
            f"{where}: parameter '{name}' needs a type, one of {', '.join(_TYPES)}; got {spec!r}"
        )
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "float":
        # YAML 1.1 reads 1e-3 (no dot) as a string; the intent is a number.
        kwargs = {k: _number(v) if k in ("low", "high", "step") else v for k, v in kwargs.items()}
    kinds: dict[str, type[BaseDistribution]] = {
        "float": FloatDistribution, "int": IntDistribution, "categorical": CategoricalDistribution,
    }
    try:
        return kinds[spec["type"]](**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: parameter '{name}' {spec!r} is invalid: {exc}") from None


def validate_point(
    where: str, index: int, point: object, params: dict[str, BaseDistribution]
) -> Params:
    """A complete point of the space, its values converted to the distributions' types."""
    return _default(where, index, point, params)


def _default(
    where: str, index: int, point: object, params: dict[str, BaseDistribution]
) -> Params:
    if not isinstance(point, dict) or set(point) != set(params):
        got = sorted(point) if isinstance(point, dict) else point
        raise ConfigError(
            f"{where}: defaults[{index}] must give every searched parameter "
            f"{sorted(params)}; got {got}"
        )
    from optuna.distributions import FloatDistribution, IntDistribution

    converted: Params = {}
    for name, value in point.items():
        dist = params[name]
        try:
            if isinstance(dist, FloatDistribution):
                value = float(_number(value))
            elif isinstance(dist, IntDistribution) and float(value) == int(float(value)):
                value = int(float(value))
            inside = dist._contains(dist.to_internal_repr(value))  # noqa: SLF001 - no public test
        except (TypeError, ValueError):
            inside = False
        if not inside:
            raise ConfigError(
                f"{where}: defaults[{index}].{name}={point[name]!r} is outside {dist}"
            )
        converted[name] = value
    return converted


def _number(value: _T) -> _T | float:
    return float(value) if isinstance(value, str) else value
