"""Each portfolio candidate on each meta table as a run's trial, for benchmarks/portfolio.py: the
run's default metric, its early stopping and boosting clock, one thread, on one seeded 75/25
holdout. Every (candidate, table) is appended to a cache of JSON lines as it finishes, so a rerun
resumes."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sklearn.model_selection import train_test_split

if TYPE_CHECKING:
    from benchmarks.portfolio_pool import Candidate

ROOT = Path(__file__).resolve().parents[1]
META = ROOT.parent / "shared" / "datasets" / "meta"
TASKS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
VALIDATION = 0.25


@dataclass(frozen=True)
class Table:
    name: str
    task: str
    metric: str
    greater: bool  # the metric is better higher
    families: tuple[str, ...]  # the families a run would search on it


def evaluate(pool: list[Candidate], tables: list[dict[str, str]], cache: Path, *,
             max_rows: int, fit_seconds: float, seed: int) -> list[dict[str, object]]:
    """Every (candidate, table) record, from the cache or run now (and appended to it)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["table"], r["key"]): r for r in _read(cache)}
    records = []
    for entry in tables:
        todo = [c for c in pool if (entry["name"], c.key) not in done]
        if todo:
            _run_table(entry, todo, cache, done, max_rows, fit_seconds, seed)
        records += [done[(entry["name"], c.key)] for c in pool]
    return records


def _read(cache: Path) -> list[dict[str, object]]:
    if not cache.exists():
        return []
    return [json.loads(line) for line in cache.read_text().splitlines() if line.strip()]


def _run_table(entry: dict[str, str], todo: list[Candidate], cache: Path,
               done: dict[tuple[object, object], dict[str, object]], max_rows: int,
               fit_seconds: float, seed: int) -> None:
    from tasks.config import parse_config
    from tasks.data.inspect import inspect_data
    from tasks.data.split import SplitPlan, split_data
    from tasks.metrics import early_stopping_watch
    from tasks.search.candidates import Candidate as Trial
    from tasks.search.candidates import TrialSettings
    from tasks.search.evaluate import evaluate_candidate

    task = TASKS[entry["task"]]
    path = META / entry["file"]
    frame = _subsample(pd.read_parquet(path), entry["target"], task,
                       math.ceil(max_rows / (1 - VALIDATION)), seed)
    # As a run holding out a quarter: the default metric, its early stopping, its families.
    config = parse_config(training_data=str(path), target=entry["target"], task=task,
                          validation_size=VALIDATION, random_state=seed)
    profile = inspect_data(config, frame)
    data, _ = split_data(SplitPlan.of(config), profile, frame)
    n_classes = None if data.classes is None else len(data.classes)
    settings = TrialSettings(profile.roles, seed, 1, featurize=config.featurize,
                             early_stopping=early_stopping_watch(profile.metric, n_classes),
                             metric=profile.metric.name, fit_seconds=fit_seconds)
    table = Table(entry["name"], task, profile.metric.name, profile.metric.greater_is_better,
                  profile.families)
    with cache.open("a") as out:
        for number, candidate in enumerate(todo):
            record: dict[str, object] = {"table": table.name, "key": candidate.key,
                                         "task": task, "metric": table.metric,
                                         "greater": table.greater, "applies": False}
            if candidate.family in table.families:
                cpu = time.process_time()
                result = evaluate_candidate(Trial(number, candidate.family, candidate.params),
                                            data, settings)
                # One thread, so CPU time is the work; wall time swells on a shared machine.
                record.update(applies=True, ok=result.ok,
                              cpu_seconds=round(time.process_time() - cpu, 3),
                              reused_seconds=round(result.reused_seconds, 3),
                              score=result.metrics.get(table.metric) if result.ok else None,
                              fit_seconds=round(result.fit_seconds, 3),
                              predict_seconds=round(result.predict_seconds, 3),
                              error=(result.error or "")[-300:] or None)
                score = record["score"]
                print(f"{table.name:<20} {candidate.family:<20} "
                      f"{score if score is None else f'{score:.4f}'} "
                      f"{result.fit_seconds:.1f}s", flush=True)
            out.write(json.dumps(record) + "\n")
            out.flush()
            done[(table.name, candidate.key)] = record


def _subsample(frame: pd.DataFrame, target: str, task: str, rows: int,
               seed: int) -> pd.DataFrame:
    """At most `rows` rows, stratified on the class when every class has two rows or more."""
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    y = frame[target]
    stratify = y if task == "classification" and y.value_counts().min() >= 2 else None
    kept, _ = train_test_split(frame, train_size=rows, stratify=stratify, random_state=seed)
    return kept.reset_index(drop=True)
