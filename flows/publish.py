"""The register step: summary, charts, the model, the registry decision, the model card.

Everything lands on the flow run's MLflow parent run. A new registry version is created last
of the model artifacts; if settling its aliases fails, the version is deleted again, so nothing
half-written stays in the registry.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from flows.run import Budget, TrackedRun, leaderboard
from tasks.budget import IMPORTANCE_SECONDS
from tasks.registry.charts import ChartSet, draw_charts
from tasks.final.choice import Choice
from tasks.registry.model_card import CardFacts, model_card
from tasks.registry.promotion import Decision, promote
from tasks.final.evaluation import Evaluation
from tasks.search.loop import SearchOutcome
from tasks.data.sets import SearchData
from tasks.registry.tracking import RegisteredModel

__all__ = ["register"]

log = logging.getLogger("automl")


def register(
    run: TrackedRun, model: Any, data: SearchData, choice: Choice, evaluation: Evaluation,
    outcome: SearchOutcome, budget: Budget | None = None,
) -> RegisteredModel:
    tracker, run_id, metric = run.tracker, run.run_id, run.profile.metric
    assert tracker is not None
    summary = {f"best_{k}": v for k, v in evaluation.validation.items()}
    if evaluation.test:
        summary.update({f"test_{k}": v for k, v in evaluation.test.items()})
    summary["trials"] = len(outcome.results)
    tags = {"best_model": choice.label, "stop_reason": outcome.stop_reason}
    board = leaderboard(outcome, metric)
    tracker.log_summary(run_id, summary, tags, pd.DataFrame(board))
    run.finish_curve()

    charts = ChartSet(Path("charts"))
    held = evaluation.held_out
    with tempfile.TemporaryDirectory() as tmp:
        if held is not None:
            # Permutation importance is the one slow chart: it aims at a tenth of the run so
            # far, at most IMPORTANCE_SECONDS, and is skipped if it cannot fit in a quarter of
            # the budget left.
            aim, limit = IMPORTANCE_SECONDS, float("inf")
            if budget is not None:
                limit = max(1.0, (budget.end - time.monotonic()) / 4)
                aim = min(aim, 0.1 * budget.elapsed(), limit)
            aim = max(1.0, aim)
            charts = draw_charts(Path(tmp) / "charts", held, model, metric, run.trace,
                                 seed=run.config.random_state, importance_seconds=aim,
                                 importance_limit=limit)
            tracker.log_folder(run_id, charts.folder, "charts")
            if charts.importance:
                tracker.log_text(run_id, pd.Series(charts.importance).to_json(indent=2),
                                 "feature_importance.json")
            log.info("charts: %d drawn, %d skipped in %.1fs (%s)", len(charts.drawn),
                     len(charts.skipped), charts.seconds,
                     ", ".join(f"{k.removesuffix('.png')} {v:.1f}s" for k, v in charts.timings.items()))

    example = data.X.iloc[data.refit_rows[:5]]
    name = run.config.registered_model_name
    registered = tracker.register(run_id, model, example, name)
    decision: Decision | None = None
    if held is not None:
        new_score = evaluation.final[metric.name]
        try:
            decision = promote(tracker, name, registered.version, held, metric, new_score,
                               allowed=run.config.promote, digest=run.digest)
        except BaseException:
            tracker.delete_version(name, registered.version)
            raise
        log.info("registry: %s version %s %s", name, registered.version, decision.reason)
        scores = {"registry_new_score": decision.new_score, "chart_seconds": charts.seconds}
        if decision.champion_score is not None:
            scores["registry_champion_score"] = decision.champion_score
        tracker.log_outcome(run_id, scores, {
            "registry.version": registered.version,
            "registry.decision": decision.tags()["automl.decision"],
            "registry.reason": decision.reason,
            "registry.compared_version": decision.champion_version or "none",
            "registry.basis": decision.basis,
        })
    registered = replace(registered, decision=decision)
    run.mark_registered(registered.version)
    tracker.log_text(run_id, model_card(_facts(run, choice, evaluation, outcome, board, charts,
                                               registered)), "model_card.md")
    return registered


def _facts(run: TrackedRun, choice: Choice, evaluation: Evaluation, outcome: SearchOutcome,
           board: list[dict[str, Any]], charts: ChartSet, registered: RegisteredModel) -> CardFacts:
    params, profile = run.params, run.profile
    return CardFacts(
        model_name=registered.name,
        version=registered.version,
        run_id=run.run_id,
        tracking_uri=run.config.resolved_tracking_uri,
        best_model=choice.label,
        task=profile.task,
        target=run.config.target,
        primary_metric=profile.metric.name,
        data={"source": params.get("training_data"), "rows": params.get("n_rows"),
              "digest": run.digest, "roles": profile.roles.summary()},
        config={k: v for k, v in params.items() if k not in ("n_rows",)},
        guardrails=run.report.to_dicts(),
        search={"trials": len(outcome.results),
                "failed": sum(r.status == "failed" for r in outcome.results),
                "pruned": sum(r.status == "pruned" for r in outcome.results),
                "stop_reason": outcome.stop_reason, "scheme": run.data.scheme},
        leaderboard=board[:15],
        validation_metrics=evaluation.validation,
        test_metrics=evaluation.test,
        charts=charts.drawn,
        skipped_charts=charts.skipped,
        decision=registered.decision.to_dict() if registered.decision else None,
    )
