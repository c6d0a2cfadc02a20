"""The worker pool's figures: trials per minute with 1 and 2 concurrent workers, and the full
flow's overhead against a bare Optuna loop calling the same objective in one process.

    .venv/bin/python benchmarks/parallel.py [--trials 50] [--throughput-trials 40] [--repeats 2]

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


def work_seconds(trials: list[optuna.trial.FrozenTrial]) -> float:
    """Seconds the trials spent fitting and predicting (a reused preprocessing counted once)."""
    return sum(t.user_attrs.get("fit_seconds", 0) + t.user_attrs.get("predict_seconds", 0)
               - t.user_attrs.get("reused_seconds", 0) for t in trials)


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


class _InProcess:
    """run_search's evaluator for the bare loop: each candidate runs at once, in this process."""

    def __init__(self, split, settings) -> None:
        self.split, self.settings, self.results = split, settings, {}

    def submit(self, candidate):
        from dataclasses import replace

        from tasks.search.evaluate import evaluate_candidate

        started = time.time()
        result = evaluate_candidate(candidate, self.split, self.settings)
        self.results[candidate.number] = replace(result, started_at=started, ended_at=time.time())
        return candidate.number

    def first_done(self, handles):
        return handles[0]

    def result(self, handle):
        return self.results.pop(handle)


def _bare(data: Path, n_trials: int) -> dict:
    """The flow's own candidate loop (tasks.search.loop.run_search, with the lag a deterministic
    run tells its results with), so the sampler asks the same configurations as the flow's."""
    started = time.perf_counter()
    from optuna.storages import InMemoryStorage

    sys.path.insert(0, str(ROOT))
    from flows.search import SearchSettings
    from flows.steps import trial_settings
    from tasks.config import parse_config
    from tasks.data.inspect import inspect_data
    from tasks.data.split import SplitPlan, split_data
    from tasks.data.storage import read_table
    from tasks.final.ensemble import choose_model
    from tasks.final.refit import refit_model
    from tasks.search.loop import SearchLimits, run_search
    from tasks.search.state import SearchState
    from tasks.search.study import open_study

    config = parse_config(training_data=str(data), target=TARGET, iterations=n_trials,
                          max_concurrent_iterations=1, enable_early_stopping=False,
                          enable_pruning=False)
    frame = read_table(config.training_data, what="training data")
    profile = inspect_data(config, frame)
    split, _ = split_data(SplitPlan.of(config), profile, frame)
    settings = trial_settings(config, profile, split)  # what the flow's trials get
    search = SearchSettings.of(config)
    study = open_study(name="bare", workdir=Path("."), storage=InMemoryStorage(),
                       maximize=profile.metric.greater_is_better, seed=config.random_state)
    state = SearchState(profile.metric, profile.families)
    limits = SearchLimits(iterations=n_trials, deadline=lambda: float("inf"), batch_size=1,
                          patience=None, prune=False, lag=search.lag)
    search_started = time.perf_counter()
    run_search(study, state, limits, _InProcess(split, settings), lambda result, state: None)
    search_seconds = time.perf_counter() - search_started
    results = [r for r in state.results if r.duplicate_of is None]
    work = sum(r.fit_seconds + r.predict_seconds - r.reused_seconds for r in results)
    best = choose_model(
        sorted((r for r in results if r.ok), key=lambda r: r.metrics[profile.metric.name],
               reverse=profile.metric.greater_is_better),
        split, profile.metric, rounds=config.ensemble_iterations, enabled=False,
    )
    refit_model(best, split, settings)
    return {"search": search_seconds, "work": work, "in_process": time.perf_counter() - started,
            "configurations": [t.params for t in sorted(study.trials, key=lambda t: t.number)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--throughput-trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, choices=(1, 2), default=2,
                        help="overhead runs of each side: 2 runs flow, bare, bare, flow")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(_bare(args.bare, args.trials)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        data = sample(tmp_path)

        if not args.skip_throughput:
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
                print(f"| {workers} | {len(trials)} | {span:.1f} | {rate:.1f} | "
                      f"{rate / base:.2f}x |")
            same = sequences[0] == sequences[1]
            print(f"\nsame configurations in both runs: {'yes' if same else 'no'}")

        print(f"\n## Overhead: {args.trials} trials, one at a time, full flow vs a bare Optuna loop\n")
        # The order flow, bare, bare, flow (with --repeats 2): a machine that slows down or
        # speeds up during the comparison weighs on both sides alike. The same configurations
        # take seconds of fitting that vary by 5% between runs, so each side's machinery (its
        # wall time less its fitting and predicting) is reported beside the whole.
        order = ["flow", "bare"] if args.repeats == 1 else ["flow", "bare", "bare", "flow"]
        print("| run | wall s | search s | fitting and predicting s | wall less fitting s |")
        print("|---|---|---|---|---|")
        runs: dict[str, list[tuple[float, float, float]]] = {"flow": [], "bare": []}
        seen: list[list[dict]] = []  # each run's configurations, in trial order
        flow_wall = 0.0
        for n, side in enumerate(order):
            if side == "flow":
                work = tmp_path / f"flow{n}"
                wall, out = run_cli(data, work, "--iterations", str(args.trials),
                                    "--no-ensembling", "--max-concurrent", "1")
                trials, span = search_span(work)
                seconds = work_seconds(trials)
                configurations = [t.params for t in sorted(trials, key=lambda t: t.number)]
                flow_wall = out["wall_seconds"]
                label = "automl train (Prefect, MLflow, worker process)"
            else:
                bare = bare_loop(data, args.trials)
                wall, span, seconds = bare["wall"], bare["search"], bare["work"]
                configurations = bare["configurations"]
                label = "bare loop (the flow's run_search, in one process)"
            runs[side].append((wall, span, seconds))
            seen.append(configurations)
            print(f"| {label} | {wall:.1f} | {span:.1f} | {seconds:.1f} | {wall - seconds:.1f} |")
        mean = {side: [sum(v) / len(v) for v in zip(*runs[side], strict=True)]
                for side in ("flow", "bare")}
        (fw, fs, fwork), (bw, bs, bwork) = mean["flow"], mean["bare"]
        print(f"\nextra wall time: {100 * (fw / bw - 1):+.1f}% (search alone: "
              f"{100 * (fs / bs - 1):+.1f}%); the machinery, wall less fitting: "
              f"{fw - fwork:.1f} s against {bw - bwork:.1f} s, {fw - fwork - bw + bwork:+.1f} s or "
              f"{100 * (fw - fwork - bw + bwork) / bw:+.1f}% of the bare loop's wall; "
              f"flow-reported wall {flow_wall:.1f} s; "
              f"same configurations in every run: "
              f"{'yes' if all(c == seen[0] for c in seen) else 'no'}")


if __name__ == "__main__":
    main()
