"""Real trials on a shared dataset, for the tests of what comes after the search (ensembles,
stacks, refits): each candidate evaluated on the same folds, as the search would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from support import load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.sets import SearchData
from tasks.data.split import SplitPlan, split_data
from tasks.features.roles import ColumnRoles
from tasks.metrics import METRICS
from tasks.search.candidates import Candidate, TrialResult, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space
from tasks.search.workers import Payload


@dataclass(frozen=True)
class Run:
    data: SearchData
    results: list[TrialResult]
    roles: ColumnRoles | None = None


def candidate(number: int, family: str, **overrides: object) -> Candidate:
    """A family's default configuration, with some parameters changed."""
    return Candidate(number, family, {**load_space(family).defaults[0], **overrides})


def blood_payload(folder: Path) -> Payload:
    """blood_transfusion in 3 folds, written as the payload trial workers load."""
    frame = load("blood_transfusion")
    config = parse_config(training_data="blood", target="donated_march_2007", n_cross_validations=3)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(roles=profile.roles, seed=0, n_jobs=1)
    return Payload.write(data, settings, folder, "blood")


def run_trials(name: str, target: str, task: str, candidates: list[Candidate],
               folds: int = 3, frame: pd.DataFrame | None = None) -> Run:
    """The candidates on dataset `name`, or on `frame` (some of its rows) when given."""
    frame = load(name) if frame is None else frame
    config = parse_config(training_data=name, target=target, task=task, n_cross_validations=folds)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = TrialSettings(roles=profile.roles, seed=0, n_jobs=1)
    results = [evaluate_candidate(c, data, settings) for c in candidates]
    for r in results:
        assert r.ok, r.error
        assert r.predictions is not None and r.predictions.shape[0] == len(data.valid_rows)
    return Run(data, results, profile.roles)


def by_metric(run: Run, name: str) -> list[TrialResult]:
    """The run's trials, best first by metric `name`."""
    metric = METRICS[name]
    return sorted(run.results, key=lambda r: r.metrics[name], reverse=metric.greater_is_better)
