"""What a training run leaves behind, on its MLflow parent run and in the registry, in three steps
that can each be tried again:

- report: the summary metrics, the leaderboard, the best-so-far curve's last point, the charts;
- register: the model (MLflow model and model.pkl), a new registry version and the
  champion/challenger decision. A version is created last of the model's artifacts; if anything
  after it fails, the champion alias goes back where it was and the version is deleted, so
  nothing half-written stays in the registry and a retry registers once;
- describe: the model card, the run's and the version's descriptions, and report.html (the
  card's facts, the whole leaderboard and the charts in one self-contained page).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tasks.errors import first_line
from tasks.final.choice import STACK
from tasks.final.thresholds import decision_threshold
from tasks.registry.descriptions import run_description, version_description
from tasks.registry.model_card import CardFacts, model_card
from tasks.registry.promotion import CHALLENGER, CHAMPION, promote
from tasks.registry.records import ChartSet
from tasks.registry.report import REPORT_FILE, html_report
from tasks.registry.tracking.versions import PENDING, STATE_TAG, is_pending

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from tasks.budget import Budget
    from tasks.data.profile import Profile
    from tasks.data.sets import SearchData
    from tasks.final.choice import Choice
    from tasks.final.evaluation import Evaluation
    from tasks.metrics import Metric
    from tasks.registry.promotion import Decision
    from tasks.registry.records import RegisteredModel
    from tasks.registry.run import TrackedRun
    from tasks.search.outcome import LeaderboardRow, SearchOutcome
    from tasks.types import Estimator

__all__ = ["report_run", "register_model", "describe_model", "curve_name"]

log = logging.getLogger("automl")

CHARTS_SECONDS = 2.0  # about what the charts without permutation importance take (2 cores)


def curve_name(metric: Metric) -> str:
    """The parent run's best-so-far metric, a point each time the search's best improves."""
    return f"best_so_far_{metric.name}"


def report_run(run: TrackedRun, model: Estimator, choice: Choice, outcome: SearchOutcome,
               evaluation: Evaluation, metric: Metric, budget: Budget | None = None,
               seed: int = 0) -> ChartSet:
    """The run's summary and charts. Charts that cannot be drawn, or cannot fit the time the
    budget leaves them, are skipped with the reason (ChartSet.skipped)."""
    tracker, run_id = run.tracker, run.run_id
    summary = {f"best_{k}": v for k, v in evaluation.validation.items()}
    summary.update({f"test_{k}": v for k, v in (evaluation.test or {}).items()})
    summary["trials"] = len(outcome.results)
    summary["temperature"] = choice.temperature  # 1: probabilities not rescaled
    held = evaluation.held_out
    threshold = decision_threshold(choice, None if held is None else held.classes)
    if threshold is not None:  # 0.5: not tuned
        summary["decision_threshold"] = threshold
    tags = {"best_model": choice.label, "stop_reason": outcome.stop_reason}
    tracker.log_summary(run_id, summary, tags, pd.DataFrame(outcome.leaderboard(metric)))
    best = outcome.best.metrics.get(metric.name)
    if best is not None:  # the curve spans the whole search: a point at its last trial
        tracker.log_outcome(run_id, {curve_name(metric): best}, {},
                            step=len(outcome.results) - 1)
    if held is None:
        return ChartSet(Path("charts"))
    if budget is not None and budget.left() < CHARTS_SECONDS:
        # The model is registered; drawing now would only push the run past its budget.
        why = f"no time left in the budget ({max(0.0, budget.left()):.0f} s)"
        log.info("charts: skipped, %s", why)
        return ChartSet(Path("charts"), skipped={"all": why})
    from tasks.registry.charts import draw_charts  # matplotlib: loaded when charts are drawn

    aim, limit = budget.importance_seconds() if budget else (10.0, float("inf"))
    with tempfile.TemporaryDirectory() as tmp:
        charts = draw_charts(Path(tmp) / "charts", held, model, metric, outcome, seed=seed,
                             importance_seconds=aim, importance_limit=limit)
        tracker.log_folder(run_id, charts.folder, "charts")
        charts.images = {name: (charts.folder / name).read_bytes() for name in charts.drawn}
    tracker.log_outcome(run_id, {"chart_seconds": charts.seconds}, {})
    if charts.importance:
        tracker.log_text(run_id, pd.Series(charts.importance).to_json(indent=2),
                         "feature_importance.json")
    if charts.cohorts is not None:
        tracker.log_text(run_id, json.dumps(charts.cohorts, indent=2), "error_analysis.json")
    if charts.contributions is not None:
        tracker.log_text(run_id, json.dumps(charts.contributions, indent=2),
                         "contributions.json")
    log.info("charts: %d drawn, %d skipped in %.1fs (%s)", len(charts.drawn), len(charts.skipped),
             charts.seconds, ", ".join(f"{k.removesuffix('.png')} {v:.1f}s"
                                       for k, v in charts.timings.items()))
    return charts


def register_model(run: TrackedRun, model: Estimator, data: SearchData, evaluation: Evaluation,
                   metric: Metric, name: str, *, allowed: bool = True) -> RegisteredModel:
    """A new version of `name`, and the champion alias moved to it if it wins (allowed=False:
    no alias moves).

    The version is created pending and marked complete last. A failure in between withdraws it
    (aliases put back, version deleted); when the registry cannot be reached to do that, the
    next attempt of the same run (a retry, or --resume) does, before registering again.
    """
    tracker = run.tracker
    _withdraw_pending(run, name)
    example = data.X.iloc[data.refit_rows[:5]]
    # Where the aliases stand before: a failed registration puts them back.
    before = {alias: _number(tracker.version_by_alias(name, alias))
              for alias in (CHAMPION, CHALLENGER)}
    registered = tracker.register(run.run_id, model, example, name, previous=before)
    decision: Decision | None = None
    try:
        held = evaluation.held_out
        if held is not None:
            decision = promote(tracker, name, registered.version, held, metric,
                               evaluation.final[metric.name], allowed=allowed,
                               digest=run.parent.table_digest)
            log.info("registry: %s version %s holds %s: %s", name, registered.version,
                     f"@{decision.alias}" if decision.alias else "no alias", decision.reason)
            _log_decision(run, registered.version, decision)
        tracker.mark_complete(name, registered.version)
        run.mark_registered(registered.version)
    except BaseException:
        try:
            tracker.withdraw(name, registered.version, before)
        except Exception as exc:  # noqa: BLE001 - the first error is the one to report
            log.warning("registry: version %s of %s could not be withdrawn (%s); it stays "
                        "marked %s=%s, which loaders skip, until this run is tried again",
                        registered.version, name, first_line(exc, 200), STATE_TAG, PENDING)
        raise
    return replace(registered, decision=decision)


def _withdraw_pending(run: TrackedRun, name: str) -> None:
    """Versions an earlier attempt of this run left pending (it lost the registry before it
    could withdraw them) are withdrawn before this attempt registers."""
    for version in run.tracker.versions_of_run(name, run.run_id):
        if is_pending(version):
            log.info("registry: withdrawing version %s of %s, left pending by an earlier "
                     "attempt of this run", version.version, name)
            run.tracker.withdraw(name, str(version.version))


def _number(version: ModelVersion | None) -> str | None:
    return None if version is None else str(version.version)


def _log_decision(run: TrackedRun, version: str, decision: Decision) -> None:
    scores = {"registry_new_score": decision.new_score}
    if decision.champion_score is not None:
        scores["registry_champion_score"] = decision.champion_score
    run.tracker.log_outcome(run.run_id, scores, {
        "registry.version": version,
        "registry.decision": decision.tags()["automl.decision"],
        "registry.reason": decision.reason,
        "registry.compared_version": decision.champion_version or "none",
        "registry.basis": decision.basis,
    })


def describe_model(run: TrackedRun, registered: RegisteredModel, profile: Profile,
                   data: SearchData, choice: Choice, evaluation: Evaluation,
                   outcome: SearchOutcome, charts: ChartSet, checks: list[dict[str, str]],
                   target: str, onnx: str = "") -> str:
    """The model card, logged on the run as model_card.md (and returned); the run's and the
    version's descriptions; the HTML report beside the card (best effort)."""
    tracker = run.tracker
    facts = replace(_facts(run, registered, profile, data, choice, evaluation, outcome, charts,
                           checks, target), onnx=onnx)
    card = model_card(facts)
    tracker.log_text(run.run_id, card, "model_card.md")
    tags = tracker.run_tags(run.run_id)
    tracker.describe_run(run.run_id, run_description(facts, tags))
    tracker.describe_version(registered.name, registered.version, version_description(facts, tags))
    _log_report(run, facts, choice, outcome.leaderboard(profile.metric), charts)
    return card


def _log_report(run: TrackedRun, facts: CardFacts, choice: Choice,
                leaderboard: list[LeaderboardRow], charts: ChartSet) -> None:
    """report.html: a view of what is already logged, so never a reason to fail the run."""
    started = time.perf_counter()
    try:
        total = sum(choice.weights)
        # A stack's members are weighed by its meta-learner, not by a weight of their own.
        members = "-" if not choice.is_ensemble else ", ".join(
            m.candidate.label if choice.kind == STACK else f"{m.candidate.label} x{w / total:.3g}"
            for m, w in zip(choice.members, choice.weights, strict=True))
        page = html_report(facts, leaderboard, members, charts.images)
        run.tracker.log_text(run.run_id, page, REPORT_FILE)
    except Exception as exc:  # noqa: BLE001 - the card and the charts are logged already
        log.warning("report: %s not logged: %s", REPORT_FILE, first_line(exc, 200))
        return
    log.info("report: %s, %d kB with %d charts, in %.2fs", REPORT_FILE, len(page) // 1024,
             len(charts.images), time.perf_counter() - started)


def _facts(run: TrackedRun, registered: RegisteredModel, profile: Profile, data: SearchData,
           choice: Choice, evaluation: Evaluation, outcome: SearchOutcome, charts: ChartSet,
           checks: list[dict[str, str]], target: str) -> CardFacts:
    params = run.parent.params
    return CardFacts(
        model_name=registered.name,
        version=registered.version,
        run_id=run.run_id,
        tracking_uri=run.tracker.tracking_uri,
        best_model=choice.label,
        task=profile.task,
        target=target,
        primary_metric=profile.metric.name,
        data={"source": params.get("training_data"), "rows": params.get("n_rows"),
              "digest": run.parent.table_digest, "roles": profile.roles.summary()},
        config={k: v for k, v in params.items() if k != "n_rows"},
        guardrails=checks,
        search={"trials": len(outcome.results), "failed": outcome.failed,
                "pruned": outcome.pruned, "stop_reason": outcome.stop_reason,
                "scheme": data.scheme},
        leaderboard=outcome.leaderboard(profile.metric)[:15],
        validation_metrics=evaluation.validation,
        test_metrics=evaluation.test,
        charts=charts.drawn,
        skipped_charts=charts.skipped,
        decision=registered.decision.to_dict() if registered.decision else None,
        inference=evaluation.cost.to_dict() if evaluation.cost else {},
        cohorts=charts.cohorts,
    )
