"""The search's state in Optuna storage: the only module that opens it. A journal file in the
working folder, or an RDB shared by machines.

The study is the search's state: every finished trial's metrics are stored on it, so a run killed
mid-search can be resumed from the storage alone (its predictions are files beside it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from tasks.errors import ConfigError
from tasks.search.candidates import Candidate, TrialResult
from tasks.search.sampling import FAMILY, make_sampler
from tasks.search.spaces import load_space

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from tasks.types import Params

__all__ = [
    "open_storage", "open_study", "storage_url", "find_unfinished", "restore_trials",
    "has_all_params", "warm_start_points", "resume_study", "Resumed", "predictions_folder",
    "save_predictions", "mark_registered", "mark_search_stopped", "INTERRUPTED",
]

SEARCH_STOPPED = "search_stopped"
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
    storage: BaseStorage | None = None, attrs: Mapping[str, object] | None = None,
    sampler: str = "tpe",
) -> optuna.Study:
    """Create the study, or open it again to resume it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is None:
        storage = open_storage(None, workdir)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(seed, sampler),
        direction="maximize" if maximize else "minimize",
        load_if_exists=True,
    )
    if study.trials:
        # Resumed: a sampler seeded as before would draw the first run's random points again.
        study.sampler = make_sampler(seed + len(study.trials), sampler)
    # The search may create the study before the tracking step adds its attributes.
    started = {} if "started" in study.user_attrs else {"started": time.time()}
    for key, value in {**started, **(attrs or {})}.items():
        study.set_user_attr(key, value)
    return study


def find_unfinished(storage: BaseStorage, experiment: str) -> str | None:
    """The newest study of this experiment that never registered a model, if any."""
    studies = [
        s for s in storage.get_all_studies()
        if s.user_attrs.get("experiment") == experiment and "registered_version" not in s.user_attrs
    ]
    if not studies:
        return None
    return max(studies, key=lambda s: s.user_attrs.get("started", 0)).study_name


def warm_start_points(storage: BaseStorage, experiment: str, top: int = 5) -> list[Params]:
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
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    scored = [(t.value, t) for t in trials if t.value is not None]  # (value, trial)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    scored.sort(key=lambda s: (-s[0] if maximize else s[0], s[1].number))
    points: list[Params] = []
    for _, trial in scored:
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
    attrs = frozen.user_attrs
    candidate = Candidate(frozen.number, family, params, rows=attrs.get("rows"))
    ok = frozen.state == TrialState.COMPLETE
    saved = predictions / f"{frozen.number}.npy"
    return TrialResult(
        candidate, ok, dict(attrs.get("metrics", {})),
        np.load(saved) if ok and saved.exists() else None,
        attrs.get("fit_seconds", 0.0), attrs.get("predict_seconds", 0.0),
        attrs.get("error"), attrs.get("reason"), refit_params=dict(attrs.get("refit_params", {})),
        fold_scores=tuple(attrs.get("fold_scores", ())), duplicate_of=attrs.get("duplicate_of"),
    )


@dataclass(frozen=True)
class Resumed:
    """An interrupted run's study, ready to go on."""

    study_name: str
    run_id: str  # the MLflow parent run it belongs to
    history: tuple[TrialResult, ...]  # its finished trials
    retry: tuple[Params, ...]  # parameters of the trials it was running
    interrupted: tuple[int, ...]  # their trial numbers
    stopped: str | None = None  # why its search ended, when it did: stopped after the search


def resume_study(storage: BaseStorage, experiment: str, workdir: Path, split_digest: str, *,
                 maximize: bool, seed: int, sampler: str = "tpe") -> Resumed | None:
    """The experiment's newest study that never registered a model, opened again, or None.
    Its data and split must be this run's (split_digest), or its trials compare nothing."""
    name = find_unfinished(storage, experiment)
    if name is None:
        return None
    study = open_study(name=name, workdir=workdir, storage=storage, maximize=maximize, seed=seed,
                       sampler=sampler)
    attrs = study.user_attrs
    # "data_digest" is what releases up to 0.1.0 called the split's digest.
    if attrs.get("split_digest", attrs.get("data_digest")) != split_digest:
        raise ConfigError(
            f"--resume found experiment {experiment!r}'s interrupted run, but this run's data or "
            "split differ from it; use the same data and validation settings, or drop --resume "
            "to start a new run"
        )
    history, interrupted = restore_trials(study, predictions_folder(workdir, name))
    return Resumed(name, attrs["mlflow_run_id"], tuple(history),
                   tuple(dict(t.params) for t in interrupted),
                   tuple(t.number for t in interrupted), attrs.get(SEARCH_STOPPED))


def predictions_folder(workdir: Path, study_name: str) -> Path:
    """Where a study's trials keep their validation predictions, for a resumed run's ensemble."""
    return workdir / "trials" / study_name


def save_predictions(folder: Path, result: TrialResult) -> None:
    if result.predictions is not None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{result.candidate.number}.npy", result.predictions)


def mark_search_stopped(study: optuna.Study, reason: str) -> None:
    """The search ended (`reason`): a resumed run goes on from its trials without searching."""
    study.set_user_attr(SEARCH_STOPPED, reason)


def mark_registered(storage: BaseStorage, study_name: str, version: str) -> None:
    """The study is done: a later --resume of its experiment starts afresh."""
    study_id = storage.get_study_id_from_name(study_name)
    storage.set_study_user_attr(study_id, "registered_version", str(version))
