"""The worker pool's figures: trials per minute with 1 and 2 concurrent workers, and the full
flow's overhead against a bare Optuna loop calling the same objective in one process.

    .venv/bin/python benchmarks/parallel.py [--trials 50] [--throughput-trials 40]

Both sides of each comparison run in the same invocation, one after the other, on the same
5,000-row table (phoneme, seeded sample), so the ratios hold on a noisy shared machine better than
the seconds do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
DATASET, TARGET, ROWS = "phoneme", "Class", 5000


def sample(folder: Path) -> Path:
    frame = pd.read_parquet(SHARED / f"{DATASET}.parquet").sample(ROWS, random_state=0)
    path = folder / f"{DATASET}-{ROWS}.parquet"
    frame.to_parquet(path, index=False)
    return path


def run_cli(data: Path, workdir: Path, *extra: str) -> tuple[float, dict]:
    args = [sys.executable, "-m", "flows.cli", "train", "--data", str(data), "--target", TARGET,
            "--no-early-stopping", "--no-pruning", "--workdir", str(workdir / "runs"), "--json",
            *extra]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"automl train failed:\n{done.stderr[-3000:]}")
    return wall, json.loads(done.stdout)


def search_span(workdir: Path) -> tuple[list[optuna.trial.FrozenTrial], float]:
    """The search's trials and the seconds from the first start to the last finish."""
    from tasks.search.study import open_storage

    storage = open_storage(None, workdir / "runs")
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    start = min(trial_start(t) for t in trials)
    end = max(t.datetime_complete.timestamp() for t in trials)
    return trials, end - start


def trial_start(trial: optuna.trial.FrozenTrial) -> float:
    """Epoch seconds the trial's work started: its `started_at` (a head-start trial ran before
    the search asked for it; a trial asked ahead waits for a worker), else Optuna's start."""
    return float(trial.user_attrs.get("started_at") or trial.datetime_start.timestamp())


def overhead_ms(trials: list[optuna.trial.FrozenTrial]) -> float:
    """Median per-trial time not spent fitting or predicting: hand-over to the worker, scoring,
    logging, Optuna's ask and tell."""
    extra = sorted(
        t.datetime_complete.timestamp() - trial_start(t)
        - t.user_attrs.get("fit_seconds", 0) - t.user_attrs.get("predict_seconds", 0)
        + t.user_attrs.get("reused_seconds", 0)  # counted in fit_seconds, not spent
        for t in trials
    )
    return 1000 * extra[len(extra) // 2]


def bare_loop(data: Path, n_trials: int) -> dict:
    """The same objective in one process: no Prefect, no MLflow, no worker processes. Run in a
    child with the thread settings a trial worker gets, so only the machinery differs."""
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2",
           "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--bare", str(data), "--trials", str(n_trials)],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"the bare loop failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout), "wall": time.perf_counter() - started}


def _bare(data: Path, n_trials: int) -> dict:
    started = time.perf_counter()
    from optuna.storages import InMemoryStorage

    sys.path.insert(0, str(ROOT))
    from tasks.config import parse_config
    from tasks.data.inspect import inspect_data
    from tasks.data.storage import read_table
    from tasks.final.refit import refit_model
    from tasks.final.ensemble import choose_model
    from tasks.data.split import SplitPlan, split_data
    from tasks.search.sampling import ask_candidate, first_points
    from tasks.search.study import open_study
    from tasks.search.evaluate import evaluate_candidate
    from flows.steps import trial_settings

    config = parse_config(training_data=str(data), target=TARGET, max_concurrent_iterations=1)
    frame = read_table(config.training_data, what="training data")
    profile = inspect_data(config, frame)
    split, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = trial_settings(config, profile, split)  # what the flow's trials get
    study = open_study(name="bare", workdir=Path("."), storage=InMemoryStorage(),
                       maximize=profile.metric.greater_is_better, seed=config.random_state)
    families = list(profile.families)
    queue = first_points(study, families)
    results, per_trial, tried = [], [], {}
    search_started = time.perf_counter()
    for _ in range(n_trials):
        t0 = time.perf_counter()
        trial, candidate = ask_candidate(study, families, queue)
        if (key := candidate.key) in tried:  # as the flow: the earlier result stands
            study.tell(trial, tried[key])
            continue
        result = evaluate_candidate(candidate, split, settings)
        value = result.metrics.get(profile.metric.name) if result.ok else None
        study.tell(trial, value, state=None if value is not None else optuna.trial.TrialState.FAIL)
        if value is not None:
            tried[key] = value
        results.append(result)
        per_trial.append(time.perf_counter() - t0 - result.fit_seconds - result.predict_seconds
                         + result.reused_seconds)
    search = time.perf_counter() - search_started
    best = choose_model(
        sorted((r for r in results if r.ok), key=lambda r: r.metrics[profile.metric.name],
               reverse=profile.metric.greater_is_better),
        split, profile.metric, rounds=config.ensemble_iterations, enabled=False,
    )
    refit_model(best, split, settings)
    per_trial.sort()
    return {"search": search, "in_process": time.perf_counter() - started,
            "configurations": [t.params for t in study.trials],
            "overhead_ms": 1000 * per_trial[len(per_trial) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--throughput-trials", type=int, default=40)
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(_bare(args.bare, args.trials)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = sample(tmp_path)

        # The random sampler: both runs try the same configurations in the same order, so the
        # ratio measures the pool, not two searches that went different ways (with TPE, one
        # 20 s gradient boosting trial asked late in one run and not the other decides it).
        print(f"## Throughput: {args.throughput_trials} trials, {DATASET} {ROWS:,} rows, "
              "5-fold CV, every family, random sampler, 1 thread per trial\n")
        print("| workers | trials | search s | trials/min | ratio |")
        print("|---|---|---|---|---|")
        base, sequences = None, []
        for workers in (1, 2):
            work = tmp_path / f"w{workers}"
            run_cli(data, work, "--iterations", str(args.throughput_trials), "--no-ensembling",
                    "--max-concurrent", str(workers), "--max-cores", "1", "--sampler", "random")
            trials, span = search_span(work)
            sequences.append([t.params for t in sorted(trials, key=lambda t: t.number)])
            rate = 60 * len(trials) / span
            base = base or rate
            print(f"| {workers} | {len(trials)} | {span:.1f} | {rate:.1f} | {rate / base:.2f}x |")
        print(f"\nsame configurations in both runs: {'yes' if sequences[0] == sequences[1] else 'no'}")

        print(f"\n## Overhead: {args.trials} trials, one at a time, full flow vs a bare Optuna loop\n")
        work = tmp_path / "flow"
        flow_wall, out = run_cli(data, work, "--iterations", str(args.trials), "--no-ensembling",
                                 "--max-concurrent", "1")
        trials, span = search_span(work)
        bare = bare_loop(data, args.trials)
        same = [t.params for t in sorted(trials, key=lambda t: t.number)] == bare["configurations"]
        print("| | wall s | search s | per-trial overhead ms (median) |")
        print("|---|---|---|---|")
        print(f"| bare Optuna loop, one process | {bare['wall']:.1f} | {bare['search']:.1f} | "
              f"{bare['overhead_ms']:.0f} |")
        print(f"| automl train (Prefect, MLflow, worker process) | {flow_wall:.1f} | {span:.1f} | "
              f"{overhead_ms(trials):.0f} |")
        print(f"\nextra wall time: {100 * (flow_wall / bare['wall'] - 1):+.1f}% "
              f"(search alone: {100 * (span / bare['search'] - 1):+.1f}%); "
              f"flow-reported wall {out['wall_seconds']:.1f} s; "
              f"same configurations in both: {'yes' if same else 'no'}")


if __name__ == "__main__":
    main()
