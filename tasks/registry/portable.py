"""The registered model's ONNX export, logged beside it on its run (onnx/model.onnx) with its
outcome (the run's tag onnx_export). Never fails the run: a model part without a converter, or
a converter's own error, is recorded as the reason there is no graph."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.errors import first_line

if TYPE_CHECKING:
    from tasks.budget import Budget
    from tasks.registry.run import TrackedRun
    from tasks.types import Estimator

__all__ = ["log_onnx", "export_seconds", "ONNX_ARTIFACT"]

log = logging.getLogger("automl")

ONNX_ARTIFACT = "onnx/model.onnx"
# Loading the converters, and converting per MB of pickled model (2 shared cores: a 9.7 MB
# ensemble of boosters took 10 s, a small one 2 s).
EXPORT_SECONDS = 2.0
EXPORT_SECONDS_PER_MB = 1.0
# An export not asked for (enable_onnx_compatible_models off) takes at most this share of the run
# so far, or UNASKED_EXPORT_SECONDS, whichever is more: like the charts, it must not make a long
# run's finish much longer (a 36 MB forest of fully grown trees converts in 5-6 s).
EXPORT_SHARE = 0.05
UNASKED_EXPORT_SECONDS = 3.0


def export_seconds(model_bytes: int | None) -> float:
    """About how long exporting a model of this pickled size takes."""
    return EXPORT_SECONDS + EXPORT_SECONDS_PER_MB * (model_bytes or 0) / 1e6


def _unaffordable(budget: Budget, model_bytes: int | None) -> str | None:
    """Why an export not asked for is not tried, or None when it is."""
    needs = export_seconds(model_bytes)
    if budget.left() < needs:
        return (f"the budget has {max(0.0, budget.left()):.0f} s left, about {needs:.0f} s too "
                "few to convert this model")
    share = max(UNASKED_EXPORT_SECONDS, EXPORT_SHARE * budget.elapsed())
    if needs > share:
        return (f"converting this model would take about {needs:.0f} s, more than the "
                f"{share:.0f} s an export not asked for may take ({EXPORT_SHARE:.0%} of the run "
                "so far)")
    return None


def log_onnx(run: TrackedRun, model: Estimator, required: bool = False,
             budget: Budget | None = None, model_bytes: int | None = None) -> str:
    """Export the model, log the graph, record the outcome; the outcome as one sentence.
    required (enable_onnx_compatible_models): a failed export is a warning, not a note, and it
    is tried whatever time the budget has left; else it is tried when what it takes
    (export_seconds of the pickled size, model_bytes) fits both the time the budget has left and
    the share of the run an export not asked for may take."""
    skipped = None if required or budget is None else _unaffordable(budget, model_bytes)
    if skipped is not None:
        outcome = f"not exported: {skipped}; enable_onnx_compatible_models always exports"
        run.tracker.log_outcome(run.run_id, {}, {"onnx_export": outcome})
        log.info("onnx: %s", outcome)
        return outcome
    try:
        from tasks.onnx.export import export_onnx

        export = export_onnx(model)
    except ImportError as exc:  # the converters are dependencies; a broken install says so
        outcome, seconds, size = f"not exported: {first_line(exc, 200)}", 0.0, 0
    else:
        seconds = export.seconds
        if export.model is None:
            outcome, size = f"not exported: {export.reason}", 0
        else:
            graph = export.model.SerializeToString()
            size = len(graph)
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "onnx"
                folder.mkdir()
                (folder / "model.onnx").write_bytes(graph)
                run.tracker.log_folder(run.run_id, folder, "onnx")
            outcome = f"exported to {ONNX_ARTIFACT} ({size / 1024:.0f} kB)"
    values = {"onnx_export_seconds": seconds} | ({"onnx_bytes": float(size)} if size else {})
    run.tracker.log_outcome(run.run_id, values, {"onnx_export": outcome})
    (log.warning if required and not size else log.info)("onnx: %s in %.1fs", outcome, seconds)
    return outcome
