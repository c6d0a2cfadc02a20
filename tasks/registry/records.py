"""What the tracking store hands back (a training run's parent run, a registered version) and
what the charts step drew. Light, so that the flow's result and the registry's decision read
them without MLflow or matplotlib."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from tasks.registry.promotion import Decision
    from tasks.types import Json

__all__ = ["ParentRun", "RegisteredModel", "ChartSet"]


@dataclass(frozen=True)
class ParentRun:
    """A training run's MLflow parent run: the trials are its children, the model its artifact."""

    run_id: str
    params: Json  # as logged, no credentials (text, when read back from MLflow)
    table_digest: str | None  # MLflow's digest of the training table as read


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    model_uri: str  # models:/NAME/VERSION
    pkl_uri: str  # where model.pkl is: a local path for the embedded store, else a URI
    decision: Decision | None = None  # once the aliases are settled


@dataclass
class ChartSet:
    """The charts of a run (tasks.registry.charts draws them)."""

    folder: Path
    drawn: dict[str, str] = field(default_factory=dict)  # file name -> title
    skipped: dict[str, str] = field(default_factory=dict)  # chart -> why
    importance: dict[str, float] = field(default_factory=dict)  # raw column -> mean drop
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # file name -> seconds
    # file name -> the PNG as drawn, read back before its temporary folder goes: the HTML
    # report (tasks.registry.report) embeds them without drawing or downloading them again.
    images: dict[str, bytes] = field(default_factory=dict)
    # The metric by cohort of the strongest columns (tasks.registry.cohorts.ErrorAnalysis's
    # to_dict()); None when it was not drawn.
    cohorts: Json | None = None
    # The final model's mean |contribution| per raw column on the rows it explained, with the
    # output they add up to (tasks.registry.contribution_chart); None when it was not drawn.
    contributions: Json | None = None
