"""A training run's records, opened together and resumed together: the MLflow parent run
(tasks.registry.tracking) and the Optuna study that holds the search's state
(tasks.search.study). With resume, both are those of the experiment's newest run that never
registered a model: its finished trials count, its interrupted ones are tried again."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from tasks.data.redact import public_url
from tasks.registry.tracking import Tracker
from tasks.search.study import (
    mark_registered,
    open_storage,
    open_study,
    predictions_folder,
    resume_study,
)

if TYPE_CHECKING:
    from pathlib import Path

    import optuna
    import pandas as pd
    from optuna.storages import BaseStorage

    from tasks.config import AutoMLConfig
    from tasks.data.guardrails import GuardrailReport
    from tasks.data.profile import Profile
    from tasks.data.sets import SearchData
    from tasks.registry.records import ParentRun
    from tasks.search.candidates import TrialResult
    from tasks.types import Json, Params

__all__ = ["RunSpec", "TrackedRun", "open_run", "close_run", "new_study_name", "STUDY_TAG"]

log = logging.getLogger("automl")

STUDY_TAG = "automl.optuna_study"  # on the parent run: the Optuna study of its search


@dataclass(frozen=True)
class RunSpec:
    """What opening a training run needs of the configuration."""

    experiment: str
    tracking_uri: str
    workdir: Path
    artifact_root: Path | None  # the embedded store keeps artifacts in the working folder
    optuna_storage: str | None
    resume: bool
    seed: int
    sampler: str
    params: Json  # the configuration as logged: no credentials
    # The parent run's name (the orchestrator's run name; else EXPERIMENT-TIMESTAMP) and tags
    # linking it to the orchestrator's run.
    run_name: str | None = None
    links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, config: AutoMLConfig) -> RunSpec:
        params = config.model_dump(exclude_none=True, exclude={"storage_options", "resume"})
        for name in ("training_data", "validation_data", "test_data"):
            if name in params:
                params[name] = public_url(params[name])
        workdir = config.workdir_path
        return cls(config.experiment_name, config.resolved_tracking_uri, workdir,
                   workdir / "artifacts" if config.embedded_tracking else None,
                   config.optuna_storage, config.resume, config.random_state, config.sampler,
                   params)


@dataclass(frozen=True)
class TrackedRun:
    tracker: Tracker
    parent: ParentRun
    storage: BaseStorage
    study_name: str
    workdir: Path
    maximize: bool
    seed: int
    sampler: str
    history: tuple[TrialResult, ...] = ()  # finished trials of the run being resumed
    retry: tuple[Params, ...] = ()  # parameters of the trials it was running
    stopped: str | None = None  # why the resumed run's search ended, if it had

    @property
    def run_id(self) -> str:
        return self.parent.run_id

    @property
    def predictions_folder(self) -> Path:
        return predictions_folder(self.workdir, self.study_name)

    def study(self) -> optuna.Study:
        return open_study(name=self.study_name, workdir=self.workdir, storage=self.storage,
                          maximize=self.maximize, seed=self.seed, sampler=self.sampler)

    def mark_registered(self, version: str) -> None:
        mark_registered(self.storage, self.study_name, version)


    def tracked(self) -> TrackedRun:
        return self


def new_study_name(experiment: str) -> str:
    """A new run's study: named before its MLflow run exists, so the search can start first."""
    return f"{experiment}-{uuid.uuid4().hex}"


def open_run(spec: RunSpec, profile: Profile, data: SearchData, report: GuardrailReport,
             training: pd.DataFrame | None = None, study_name: str | None = None) -> TrackedRun:
    """The run's MLflow parent run and Optuna study, new or resumed. training is the table as
    read, logged as the run's input dataset; study_name, a new run's study (new_study_name),
    which the search may already be using."""
    spec.workdir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(spec.tracking_uri, spec.experiment, spec.artifact_root)
    storage = open_storage(spec.optuna_storage, spec.workdir)
    maximize = profile.metric.greater_is_better
    tracked_run = partial(TrackedRun, tracker=tracker, storage=storage, workdir=spec.workdir,
                          maximize=maximize, seed=spec.seed, sampler=spec.sampler)
    split = data.split_digest()
    resumed = resume_study(storage, spec.experiment, spec.workdir, split, maximize=maximize,
                           seed=spec.seed, sampler=spec.sampler) if spec.resume else None
    if resumed is not None:
        # A trial logged to MLflow but not told to Optuna before the crash runs again: its
        # MLflow run is dropped, so no trial has two.
        parent = tracker.reopen_parent(resumed.run_id, list(resumed.interrupted))
        log.info("resuming experiment %r: %d finished trials kept, %d interrupted ones queued "
                 "again", spec.experiment, len(resumed.history), len(resumed.interrupted))
        return tracked_run(parent=parent, study_name=resumed.study_name,
                           history=resumed.history, retry=resumed.retry,
                           stopped=resumed.stopped)
    if spec.resume:
        log.info("nothing to resume in experiment %r: starting a new run", spec.experiment)
    params: Json = {**spec.params, "task": profile.task, "primary_metric": profile.metric.name,
                    "validation_scheme": data.scheme, "n_rows": len(data.X)}
    source = str(params["training_data"])  # text already: RunSpec.of made it public_url's
    study_name = study_name or new_study_name(spec.experiment)
    parent = tracker.start_parent(
        spec.run_name or f"{spec.experiment}-{time.strftime('%Y%m%d-%H%M%S')}", params,
        {"task": profile.task, "automl.training_data": source, STUDY_TAG: study_name,
         **spec.links},
        training=training, source=source, checks=report.to_dicts(), report=report.to_text())
    run = tracked_run(parent=parent, study_name=study_name)
    try:
        open_study(name=run.study_name, workdir=spec.workdir, storage=storage, maximize=maximize,
                   seed=spec.seed, sampler=spec.sampler,
                   attrs={"experiment": spec.experiment, "mlflow_run_id": parent.run_id,
                          "split_digest": split})
    except BaseException:
        close_run(run, ok=False)  # a retried step starts another run: this one ends, failed
        raise
    return run


def close_run(run: TrackedRun, ok: bool) -> None:
    """The parent run ends FINISHED, or FAILED when the flow failed after opening it."""
    run.tracker.finish(run.run_id, ok=ok)
