"""When the candidate loop stops asking (tasks.search.loop), and what it says when no trial
left a model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tasks.search.memory import MEMORY_WAITS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tasks.search.candidates import TrialResult
    from tasks.search.loop import SearchLimits
    from tasks.search.state import SearchState

__all__ = ["stop_reason", "nothing_learned"]


def nothing_learned(results: Sequence[TrialResult], metric: str) -> str:
    if not results:
        return ("no trial ran, so no model was registered; raise experiment_timeout_minutes or "
                "iterations")
    if results and all(r.reason == "skipped" for r in results):
        return (f"all {len(results)} trials were kept from starting by the memory limit, so no "
                "model was registered; raise max_memory_mb")
    if results and all(r.reason == "budget" for r in results):
        return (f"no trial finished within the time budget ({len(results)} stopped unfinished), "
                "so no model was registered; raise experiment_timeout_minutes or allow faster "
                "models with allowed_models")
    if any(r.ok for r in results):  # trained, but the primary metric has no value
        return (f"{metric} is undefined on the validation rows of every trial (for example a "
                "class absent from them), so no model was registered; choose another "
                "primary_metric or a validation scheme with more rows")
    errors = [r.error for r in results if r.error]
    return (f"all {len(results)} trials failed, so no model was registered; first error: "
            f"{errors[0] if errors else 'none recorded'}")


def stop_reason(limits: SearchLimits, state: SearchState, running: int) -> str | None:
    """Why no new trial should start, or None. Running trials are left to finish (the deadline
    stops them through their own time limit)."""
    best = state.best_score
    if len(state.results) + running >= limits.iterations:
        return f"iteration limit ({limits.iterations}) reached"
    if best is not None and limits.exit_score is not None and (
        best == limits.exit_score or state.metric.better(best, limits.exit_score)
    ):
        return f"exit score {limits.exit_score} reached ({best:.4f})"
    if limits.memory is not None and running == 0 and (
            limits.memory.refused_in_a_row >= MEMORY_WAITS):
        return (f"memory limit: {limits.memory.refused_in_a_row} trials in a row would not fit "
                f"in max_memory_mb={limits.memory.limit_mb:g}")
    if limits.patience is not None and best is not None and state.since_best >= limits.patience:
        return f"early stopping: {state.since_best} trials without improvement"
    # The first trial starts whatever the clock says: the portfolio's first configuration is
    # cheap, and a run that has used its budget on start-up still ends with a model.
    started = len(state.results) + running
    if started and time.monotonic() + state.typical_seconds() >= limits.deadline():
        return "time budget used"
    return None
