"""Between the loop and Optuna: the sampler, the first points it is given, an Optuna trial asked
as a candidate, and a result told back.

The space is conditional: first the family, then that family's parameters, named
`<family>__<param>` so two families never share a name. The study itself (its storage, opening and
resuming it) is tasks.search.study's.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from tasks.search.candidates import Candidate
from tasks.search.portfolio import initial_points
from tasks.search.spaces import load_space

if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna.distributions import (
        BaseDistribution,
    )
    from optuna.trial import Trial

    from tasks.search.candidates import TrialResult
    from tasks.types import Params, ParamValue

__all__ = ["FAMILY", "make_sampler", "first_points", "ask_candidate", "tell_result",
           "suggest_param", "point_of"]

FAMILY = "family"


def make_sampler(seed: int, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    if kind == "random":
        # Draws depend only on the order of asks, never on results: a run with two trials at
        # once tries the same configurations as a run with one.
        return optuna.samplers.RandomSampler(seed=seed)
    # group=True models each family's branch of the conditional space on its own; the constant
    # liar keeps trials running side by side from being sampled at the same point.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10
        )


def first_points(
    study: optuna.Study, families: list[str], retry: Sequence[Params] = ()
) -> list[Params]:
    """What to try before the sampler's own choices: the configurations of interrupted trials,
    then every family's default configurations not tried yet. Queued one at a time as they are
    asked (not all up front), so the retried ones can go first. A retried point of a family no
    longer searched (a warm start from a run with other allowed_models) is left out."""
    retry = [p for p in retry if p.get(FAMILY) in families]
    tried = [
        t.params for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.WAITING and t.user_attrs.get("reason") != "interrupted"
    ]
    defaults = [  # the portfolio (tasks.search.portfolio), then each family's own defaults
        {FAMILY: family, **{f"{family}__{k}": v for k, v in point.items()}}
        for family, point in initial_points(families)
    ]
    return [*retry, *(d for d in defaults if d not in tried and d not in retry)]


def point_of(candidate: Candidate) -> Params:
    """The candidate's configuration as the study names its parameters, to enqueue it again."""
    family = candidate.family
    return {FAMILY: family, **{f"{family}__{k}": v for k, v in candidate.params.items()}}


def ask_candidate(
    study: optuna.Study, families: list[str], queue: list[Params] | None = None
) -> tuple[Trial, Candidate]:
    """The next trial: the head of `queue` when there is one, else the sampler's choice."""
    if queue:
        study.enqueue_trial(queue.pop(0))
    trial = study.ask()
    family = trial.suggest_categorical(FAMILY, families)
    params = {
        name: suggest_param(trial, f"{family}__{name}", dist)
        for name, dist in load_space(family).params.items()
    }
    return trial, Candidate(trial.number, family, params)


def tell_result(
    study: optuna.Study, trial: Trial, result: TrialResult, metric: str, run_id: str | None
) -> None:
    if run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("fit_seconds", round(result.fit_seconds, 3))
    if result.candidate.rows is not None:
        trial.set_user_attr("rows", result.candidate.rows)
    if result.started_at:
        # When its worker began it: a head-start trial (tasks.search.head_start) ran before it
        # was asked here.
        trial.set_user_attr("started_at", round(result.started_at, 3))
    if result.reused_seconds:
        trial.set_user_attr("reused_seconds", round(result.reused_seconds, 3))
    trial.set_user_attr("predict_seconds", round(result.predict_seconds, 3))
    if result.peak_memory_mb:
        trial.set_user_attr("peak_memory_mb", result.peak_memory_mb)
    trial.set_user_attr("metrics", {k: float(v) for k, v in result.metrics.items()})
    if result.refit_params:
        trial.set_user_attr("refit_params", result.refit_params)
    if result.duplicate_of is not None:
        trial.set_user_attr("duplicate_of", result.duplicate_of)
    if result.fold_scores:
        trial.set_user_attr("fold_scores", [float(v) for v in result.fold_scores])
        # The running mean after each fold: what pruning compared, and what TPE ranks a pruned
        # trial by.
        for step, mean in enumerate(_running_means(result.fold_scores)):
            trial.report(mean, step)
    value = result.metrics.get(metric) if result.ok else None
    if value is not None:
        study.tell(trial, value)
    elif result.reason == "pruned":
        trial.set_user_attr("reason", "pruned")
        trial.set_user_attr("error", result.error or "pruned")
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr("error", (result.error or f"{metric} is undefined")[:1000])
        trial.set_user_attr("reason", result.reason or "error")
        study.tell(trial, state=TrialState.FAIL)


def _running_means(scores: tuple[float, ...]) -> list[float]:
    values = np.asarray(scores, dtype=float)
    with np.errstate(all="ignore"):
        return [float(np.nanmean(values[: i + 1])) for i in range(len(values))]


def suggest_param(trial: Trial, name: str, dist: BaseDistribution) -> ParamValue:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise TypeError(f"unsupported distribution {dist!r}")
