"""What the checks decided about the data: the task, the metric, the families, the columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.features.roles import ColumnRoles
    from tasks.metrics import Metric

__all__ = ["Profile"]


@dataclass(frozen=True)
class Profile:
    """What the checks decided: the task, the metric, the families, the feature columns."""

    task: str
    task_inferred: bool
    metric: Metric
    families: tuple[str, ...]
    roles: ColumnRoles
    n_rows: int
    class_counts: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)  # family key -> why it is not searched
    n_features: int = 0  # about how many columns the models see once encoded
