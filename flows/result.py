"""What a training run hands back: to a person, to a calling pipeline (--json), to Prefect."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from tasks.final.thresholds import decision_threshold

if TYPE_CHECKING:
    from flows.steps import Phases
    from tasks.budget import Budget
    from tasks.config import AutoMLConfig
    from tasks.data.guardrails import GuardrailReport
    from tasks.data.profile import Profile
    from tasks.data.sets import SearchData
    from tasks.final.choice import Choice
    from tasks.final.evaluation import Evaluation
    from tasks.registry.records import RegisteredModel
    from tasks.registry.run import TrackedRun
    from tasks.search.outcome import LeaderboardRow, SearchOutcome
    from tasks.types import Json, Params

__all__ = ["TrainResult", "build_result"]


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_name: str
    task: str
    validation: str
    registered_model_name: str
    model_version: str
    model_uri: str
    pkl_uri: str
    best_model: str
    best_family: str
    # of the best single trial, as refit (with the rounds early stopping kept)
    best_params: Params
    primary_metric: str
    primary_metric_value: float
    metrics: dict[str, float]
    test_metrics: dict[str, float] | None
    trials: int
    failed_trials: int
    stop_reason: str
    wall_seconds: float
    tracking_uri: str
    pruned_trials: int = 0  # stopped after a fold, worse than the median there (not failures)
    promoted: bool = False  # did the alias champion move to this version
    aliases: list[str] = field(default_factory=list)  # aliases this version holds
    registry: Json | None = None  # the decision: reason, metric, basis, both scores
    roles: dict[str, list[str]] = field(default_factory=dict)
    guardrails: list[dict[str, str]] = field(default_factory=list)
    leaderboard: list[LeaderboardRow] = field(default_factory=list)  # every trial, best first
    phase_seconds: dict[str, float] = field(default_factory=dict)  # search, ensemble, refit...
    # What the run sized itself to: trials at once (worker processes) and each one's thread cap;
    # by default from the cores the run may use (affinity and cgroup quota, tasks.cores).
    concurrency: int = 0
    threads_per_trial: int = 0
    # Binary labels: the probability of positive_class from which the model predicts it (tuned
    # for threshold metrics, tasks.final.thresholds; else 0.5); None for other tasks.
    decision_threshold: float | None = None
    positive_class: str | None = None
    temperature: float = 1.0  # class probabilities rescaled at it (tasks.final.calibration)
    flow_run_id: str | None = None  # the Prefect flow run (None when called outside one)
    experiment_id: str | None = None  # MLflow's, for links to the run's page
    # The registered model's parts: each trial with its weight (one member: a single model).
    members: list[dict[str, str | float]] = field(default_factory=list)
    # The registered model's cost (tasks.final.cost): predict_ms_per_1k_rows,
    # predict_ms_per_row, model_bytes; empty when it was not measured.
    inference: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> Json:
        return asdict(self)


def build_result(
    config: AutoMLConfig,
    profile: Profile,
    report: GuardrailReport,
    data: SearchData,
    outcome: SearchOutcome,
    choice: Choice,
    evaluation: Evaluation,
    registered: RegisteredModel,
    run: TrackedRun,
    budget: Budget,
    phases: Phases | None = None,
) -> TrainResult:
    metric = profile.metric.name
    decision = registered.decision
    return TrainResult(
        run_id=run.run_id,
        experiment_name=config.experiment_name,
        task=profile.task,
        validation=data.scheme,
        registered_model_name=registered.name,
        model_version=registered.version,
        model_uri=registered.model_uri,
        pkl_uri=registered.pkl_uri,
        best_model=choice.label,
        best_family=choice.kind if choice.is_ensemble else choice.members[0].candidate.family,
        best_params={"family": outcome.best.candidate.family, **outcome.best.final_params},
        primary_metric=metric,
        primary_metric_value=evaluation.validation[metric],
        metrics=evaluation.validation,
        test_metrics=evaluation.test,
        trials=len(outcome.results),
        failed_trials=outcome.failed,
        pruned_trials=outcome.pruned,
        stop_reason=outcome.stop_reason,
        wall_seconds=round(budget.elapsed(), 2),
        tracking_uri=config.resolved_tracking_uri,
        promoted=bool(decision and decision.promoted),
        aliases=[decision.alias] if decision and decision.alias else [],
        registry=decision.to_dict() if decision else None,
        roles=profile.roles.summary(),
        guardrails=report.to_dicts(),
        leaderboard=outcome.leaderboard(profile.metric),
        phase_seconds=phases.rounded() if phases else {},
        concurrency=config.concurrency,
        threads_per_trial=config.threads_per_trial,
        decision_threshold=decision_threshold(choice, data.classes),
        positive_class=_positive_class(data),
        temperature=choice.temperature,
        flow_run_id=_flow_run_id(),
        experiment_id=run.tracker.experiment_id,
        # Caruana's weights are the times each trial was picked: as shares of the blend.
        members=[{"model": member.candidate.label, "weight": round(weight / sum(choice.weights), 4)}
                 for member, weight in zip(choice.members, choice.weights, strict=True)],
        inference=evaluation.cost.to_dict() if evaluation.cost else {},
    )


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return None if ctx is None or ctx.flow_run is None else str(ctx.flow_run.id)


def _positive_class(data: SearchData) -> str | None:
    if data.classes is None or len(data.classes) != 2:
        return None
    return str(data.classes[data.positive])
