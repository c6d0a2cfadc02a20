"""`automl train --help` written from the configuration itself: each option's text is its knob's
description in tasks.knobs (the words Prefect's form shows), its default, and for the metric and
model options the names the registries accept.

Filled in only when help is shown: the knobs' module loads pydantic, which parsing a command line
does not need. The metric names come from tasks.names (flows.precheck sorts them by task), not
from tasks.metrics, which loads scikit-learn: --help took 4-5 s with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["describe"]


def describe(parser: argparse.ArgumentParser) -> None:
    """Give every option whose destination is a knob its help: the knob's description, the
    option's own note (what the command line adds, such as a file form), and the default.
    Call it once per parser: the note is read from the help it replaces."""
    from tasks.knobs import Knobs

    fields = Knobs.model_fields
    for action in parser._actions:  # noqa: SLF001 - argparse keeps no public list of them
        field = fields.get(action.dest)
        if field is None:
            continue
        text = (field.description or "").strip()
        if action.const is False:  # a --no-... flag: it turns the knob off
            text = f"turns this off: {text}"
        extra = _NAMES.get(action.dest)
        parts = [text, action.help or "", extra() if extra else ""]
        default = "(required)" if field.is_required() else f"(default: {_shown(field.default)})"
        # argparse formats help with %: the descriptions' own percent signs stay text.
        action.help = " ".join(p for p in (*parts, default) if p).replace("%", "%%")


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _metric_names() -> str:
    from flows.precheck import metrics_of

    return "Names: " + _by_task(metrics_of)


def _family_names() -> str:
    from tasks.models.families import FAMILIES

    return "Names (case-insensitive): " + _by_task(
        lambda task: [f.name for f in FAMILIES.values() if task in f.estimators])


def _by_task(names: Callable[[str], list[str]]) -> str:
    return "; ".join(f"{task}: {', '.join(names(task))}"
                     for task in ("classification", "regression")) + "."


_NAMES: dict[str, Callable[[], str]] = {
    "primary_metric": _metric_names,
    "allowed_models": _family_names,
    "blocked_models": _family_names,
}
