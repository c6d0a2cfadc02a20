"""The Optuna side: the study, its storage, and turning an Optuna trial into a candidate.

The only module that talks to Optuna storage. The space is conditional: first the family, then
that family's parameters, named `<family>__<param>` so two families never share a name.

The study is the search's state: every finished trial's metrics are stored on it, so a run killed
mid-search can be resumed from the storage alone (its predictions are files beside it).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from tasks.search.portfolio import initial_points
from tasks.search.spaces import load_space
from tasks.search.candidates import Candidate, TrialResult

__all__ = [
    "open_storage", "open_study", "ask_candidate", "tell_result", "storage_url",
    "find_unfinished", "restore_trials", "first_points", "has_all_params", "warm_start_points",
    "INTERRUPTED",
]

FAMILY = "family"
INTERRUPTED = "interrupted: the run stopped while this trial was running; it is tried again"


def storage_url(workdir: Path) -> str:
    return str(workdir / "optuna.journal")


def open_storage(url: str | None, workdir: Path) -> BaseStorage:
    """An RDB URL (sqlite:///, postgresql://, mysql://) for studies shared between machines;
    else a journal file in the working folder."""
    if url:
        return RDBStorage(url)
    workdir.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(storage_url(workdir)))


def open_study(
    *, name: str, workdir: Path, maximize: bool, seed: int,
    storage: BaseStorage | None = None, attrs: dict[str, Any] | None = None, sampler: str = "tpe",
) -> optuna.Study:
    """Create the study, or open it again to resume it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is None:
        storage = open_storage(None, workdir)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=_sampler(seed, sampler),
        direction="maximize" if maximize else "minimize",
        load_if_exists=True,
    )
    if study.trials:
        # Resumed: a sampler seeded as before would draw the first run's random points again.
        study.sampler = _sampler(seed + len(study.trials), sampler)
    if not study.user_attrs:
        for key, value in {"started": time.time(), **(attrs or {})}.items():
            study.set_user_attr(key, value)
    return study


def _sampler(seed: int, kind: str = "tpe") -> optuna.samplers.BaseSampler:
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
    study: optuna.Study, families: list[str], retry: list[dict[str, Any]] | tuple = ()
) -> list[dict[str, Any]]:
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


def ask_candidate(
    study: optuna.Study, families: list[str], queue: list[dict[str, Any]] | None = None
) -> tuple[Trial, Candidate]:
    """The next trial: the head of `queue` when there is one, else the sampler's choice."""
    if queue:
        study.enqueue_trial(queue.pop(0))
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
    trial.set_user_attr("predict_seconds", round(result.predict_seconds, 3))
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


def find_unfinished(storage: BaseStorage, experiment: str) -> str | None:
    """The newest study of this experiment that never registered a model, if any."""
    studies = [
        s for s in storage.get_all_studies()
        if s.user_attrs.get("experiment") == experiment and "registered_version" not in s.user_attrs
    ]
    if not studies:
        return None
    return max(studies, key=lambda s: s.user_attrs.get("started", 0)).study_name


def warm_start_points(storage: BaseStorage, experiment: str, top: int = 5) -> list[dict[str, Any]]:
    """Where a retraining starts: the best trial of the experiment's newest study that
    registered a model, then its next best completed ones, up to `top` distinct configurations.

    The registered model may be an ensemble; its best member is this best trial.
    """
    done = [s for s in storage.get_all_studies()
            if s.user_attrs.get("experiment") == experiment
            and "registered_version" in s.user_attrs]
    if not done or top < 1:
        return []
    newest = max(done, key=lambda s: s.user_attrs.get("started", 0))
    study = optuna.load_study(study_name=newest.study_name, storage=storage)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    complete.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    points: list[dict[str, Any]] = []
    for trial in complete:
        if dict(trial.params) not in points:
            points.append(dict(trial.params))
        if len(points) == top:
            break
    return points


def restore_trials(
    study: optuna.Study, predictions: Path
) -> tuple[list[TrialResult], list[FrozenTrial]]:
    """The finished trials of an interrupted run, as results (predictions read back from their
    files), and those that were running when it stopped: marked failed, to be tried again."""
    results, interrupted = [], []
    for frozen in study.get_trials(deepcopy=False):
        if frozen.state in (TrialState.RUNNING, TrialState.WAITING):
            # A waiting one was queued but never started: failed too, or the next ask takes it
            # ahead of the retried ones (a default it held is queued again by first_points).
            _interrupt(study, frozen)
            if frozen.state == TrialState.RUNNING and has_all_params(frozen):
                interrupted.append(frozen)  # one stopped while being asked never ran: not retried
        elif frozen.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED):
            if frozen.user_attrs.get("reason") == "interrupted":
                continue
            results.append(_result(frozen, predictions))
    return results, interrupted


def has_all_params(frozen: FrozenTrial) -> bool:
    """Whether the trial got its family and every parameter of that family's space."""
    family = frozen.params.get(FAMILY)
    if family is None:
        return False
    return all(f"{family}__{name}" in frozen.params for name in load_space(family).params)


def _interrupt(study: optuna.Study, frozen: FrozenTrial) -> None:
    storage, trial_id = study._storage, frozen._trial_id  # noqa: SLF001 - storage-level update
    storage.set_trial_user_attr(trial_id, "error", INTERRUPTED)
    storage.set_trial_user_attr(trial_id, "reason", "interrupted")
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _result(frozen: FrozenTrial, predictions: Path) -> TrialResult:
    family = frozen.params[FAMILY]
    prefix = f"{family}__"
    params = {k.removeprefix(prefix): v for k, v in frozen.params.items() if k.startswith(prefix)}
    candidate = Candidate(frozen.number, family, params)
    attrs = frozen.user_attrs
    ok = frozen.state == TrialState.COMPLETE
    saved = predictions / f"{frozen.number}.npy"
    return TrialResult(
        candidate, ok, dict(attrs.get("metrics", {})),
        np.load(saved) if ok and saved.exists() else None,
        attrs.get("fit_seconds", 0.0), attrs.get("predict_seconds", 0.0),
        attrs.get("error"), attrs.get("reason"), refit_params=dict(attrs.get("refit_params", {})),
        fold_scores=tuple(attrs.get("fold_scores", ())), duplicate_of=attrs.get("duplicate_of"),
    )


def _suggest(trial: Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, list(dist.choices))
    raise TypeError(f"unsupported distribution {dist!r}")
