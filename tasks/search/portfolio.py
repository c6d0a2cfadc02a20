"""The portfolio: the first configurations a study tries (search_spaces/portfolio.yaml).

Anytime quality: with a tight budget the first few trials are all there is, so they are strong
and cheap configurations chosen for data in general (never per dataset), then each family's own
defaults, then the sampler. The file is data, checked against each family's space when read.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from tasks.errors import ConfigError
from tasks.search.spaces import load_space, validate_point

if TYPE_CHECKING:
    from tasks.types import Params

__all__ = ["load_portfolio", "initial_points"]

WHERE = "search_spaces/portfolio.yaml"


@cache
def load_portfolio() -> tuple[tuple[str, Params], ...]:
    """(family, complete point) pairs in the file's order."""
    text = resources.files("search_spaces").joinpath("portfolio.yaml").read_text()
    return parse_portfolio(yaml.safe_load(text))


def parse_portfolio(document: object) -> tuple[tuple[str, Params], ...]:
    from tasks.models.families import FAMILIES

    if not isinstance(document, list):
        raise ConfigError(f"{WHERE} must be a list of {{family: NAME, params: {{...}}}} entries")
    entries: list[tuple[str, Params]] = []
    for index, entry in enumerate(document):
        if (not isinstance(entry, dict) or set(entry) - {"family", "params"}
                or "family" not in entry):
            raise ConfigError(
                f"{WHERE}: entry {index} must be {{family: NAME, params: {{...}}}}, got {entry!r}"
            )
        family = entry["family"]
        if family not in FAMILIES:
            raise ConfigError(
                f"{WHERE}: entry {index} names family {family!r}; the families are: "
                f"{', '.join(FAMILIES)}"
            )
        space = load_space(family)
        params = entry.get("params") or {}
        unknown = sorted(set(params) - set(space.params))
        if unknown:
            raise ConfigError(
                f"{WHERE}: entry {index} ({family}) sets {unknown}, which are not searched "
                f"parameters of search_spaces/{family}.yaml; they are {sorted(space.params)}"
            )
        base = space.defaults[0] if space.defaults else {}
        point = validate_point(WHERE, index, {**base, **params}, space.params)
        entries.append((family, point))
    return tuple(entries)


def initial_points(families: list[str]) -> list[tuple[str, Params]]:
    """The portfolio's entries for these families, then every family's own defaults not already
    among them, without repeats."""
    defaults = ((f, p) for f in families for p in load_space(f).defaults)
    points: list[tuple[str, Params]] = []
    for family, point in [*load_portfolio(), *defaults]:
        if family in families and (family, point) not in points:
            points.append((family, point))
    return points
