"""The Optuna side: the study, its storage, and turning an Optuna trial into a candidate.

The only module that talks to Optuna storage. The space is conditional: first the family, then
that family's parameters, named `<family>__<param>` so two families never share a name.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import Trial, TrialState

from tasks.portfolio import initial_points
from tasks.spaces import load_space
from tasks.trial import Candidate, TrialResult

__all__ = ["open_study", "ask_candidate", "tell_result", "storage_url"]

FAMILY = "family"


def storage_url(workdir: Path) -> str:
    return str(workdir / "optuna.journal")


def open_study(
    *, name: str, workdir: Path, maximize: bool, seed: int, families: list[str]
) -> optuna.Study:
    """A study in a local journal file, with every family's default configurations queued first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workdir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(storage_url(workdir)))
    # group=True models each family's branch of the conditional space on its own.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10
        )
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        direction="maximize" if maximize else "minimize",
        load_if_exists=True,
    )
    if not study.trials:
        for family, point in initial_points(families):  # issue 8: the portfolio, then defaults
            study.enqueue_trial({FAMILY: family, **{f"{family}__{k}": v for k, v in point.items()}})
    return study


def ask_candidate(study: optuna.Study, families: list[str]) -> tuple[Trial, Candidate]:
    trial = study.ask()
    family = trial.suggest_categorical(FAMILY, families)
    params = {
        name: _suggest(trial, f"{family}__{name}", dist)
        for name, dist in load_space(family).params.items()
    }
    return trial, Candidate(trial.number, family, params)


def tell_result(
    study: optuna.Study, trial: Trial, result: TrialResult, metric: str, run_id: str | None
) -> None:
    if run_id:
        trial.set_user_attr("mlflow_run_id", run_id)
    trial.set_user_attr("fit_seconds", round(result.fit_seconds, 3))
    value = result.metrics.get(metric) if result.ok else None
    if value is not None:
        study.tell(trial, value)
    else:
        trial.set_user_attr("error", (result.error or f"{metric} is undefined")[:1000])
        study.tell(trial, state=TrialState.FAIL)


def _suggest(trial: Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise TypeError(f"unsupported distribution {dist!r}")
