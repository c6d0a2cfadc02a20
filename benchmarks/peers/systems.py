"""The systems compared, each as a command on its own interpreter, and one run of one of them.

automl-flow goes through its real command line (`automl train ... --json`) with embedded defaults;
its .pkl is then loaded in a separate process to predict the test rows. The others are small
runner scripts that train, note when training ended, and predict. Wall time is spawn to end of
training, imports and start-up included, for every system alike.

Every outcome keeps its tree's memory (peak RSS of the tree and of each process, with its role;
peak PSS of the tree); automl-flow's also keeps its phases (benchmarks.peers.phases) in `info`.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmarks.peers.data import score
from benchmarks.peers.phases import flow_phases
from benchmarks.peers.process import run_tree, thread_env

if TYPE_CHECKING:
    from benchmarks.peers.data import Dataset
    from benchmarks.peers.process import Finished

__all__ = ["DEFAULT_SYSTEMS", "SYSTEMS", "Outcome", "run_system"]

ROOT = Path(__file__).resolve().parents[2]
RUNNERS = Path(__file__).resolve().parent / "runners"
VENV = ROOT / ".venv" / "bin" / "python"
BENCH_VENV = ROOT / ".venv-bench" / "bin" / "python"
# Automl-flow's metric names for the benchmark's metrics: each system optimises what is scored.
FLOW_METRIC = {"binary": "AUC_weighted", "multiclass": "log_loss",
               "regression": "normalized_root_mean_squared_error"}


@dataclass(frozen=True)
class Outcome:
    dataset: str
    system: str
    metric: str
    value: float | None  # None: failed
    wall_seconds: float
    budget: float
    peak_rss_mb: float
    failure: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    peak_pss_mb: float | None = None  # of the tree; None where not measured (older raw files)
    # Each process of the tree: pid, role (root, api-server, worker, other), name, peak_rss_mb,
    # first_seen and last_seen (seconds after spawn); see benchmarks.peers.process.
    processes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def wall_ratio(self) -> float:
        return self.wall_seconds / self.budget


@dataclass(frozen=True)
class _Job:
    dataset: Dataset
    train: Path
    test: Path
    budget: float
    seed: int
    cores: list[int]
    folder: Path

    def args(self, out: Path) -> list[str]:
        return ["--train", str(self.train), "--test", str(self.test),
                "--target", self.dataset.target, "--task", self.dataset.task,
                "--budget", str(self.budget), "--seed", str(self.seed),
                "--cores", str(len(self.cores)), "--workdir", str(self.folder / "work"),
                "--out", str(out)]


def _runner(python: Path, script: str, *extra: str):
    def command(job: _Job, out: Path) -> list[str]:
        return [str(python), str(RUNNERS / script), *job.args(out), *extra]

    return command


def _flow_command(job: _Job, _out: Path) -> list[str]:
    d = job.dataset
    return [str(VENV.parent / "automl"), "train", "--data", str(job.train), "--target", d.target,
            "--task", "regression" if d.task == "regression" else "classification",
            "--metric", FLOW_METRIC[d.task], "--timeout-minutes", f"{job.budget / 60:.6g}",
            "--workdir", str(job.folder / "work"), "--seed", str(job.seed), "--json"]


def _flow_serial(job: _Job, out: Path) -> list[str]:
    return [*_flow_command(job, out), "--max-concurrent", "1"]


def _flow_distributed(job: _Job, out: Path) -> list[str]:
    """Distributed training on a local Dask cluster of one worker process per core, from the
    training split written as part files (about 125,000 rows each, at least two per worker):
    written before the command starts, so it is not counted."""
    import pyarrow.parquet as pq

    parts = job.folder / "parts"
    if not parts.exists():
        table = pq.read_table(job.train)
        count = max(2 * len(job.cores), -(-table.num_rows // 125_000))
        size = -(-table.num_rows // count)
        parts.mkdir(parents=True)
        for i, start in enumerate(range(0, table.num_rows, size)):
            pq.write_table(table.slice(start, size), parts / f"part-{i:04d}.parquet")
    command = _flow_command(job, out)
    command[command.index("--data") + 1] = str(parts)
    return [*command, "--training-mode", "distributed", "--max-nodes", str(len(job.cores))]


def _flow_distributed_local(job: _Job, out: Path) -> list[str]:
    """The same, without --max-nodes: one worker inside the command's process, all the cores."""
    command = _flow_distributed(job, out)
    return command[:command.index("--max-nodes")]


SYSTEMS = {
    "automl-flow": _flow_command,
    # One trial at a time on all the cores (one worker process): the memory of one worker less.
    "automl-flow-serial": _flow_serial,
    # training_mode="distributed" on a local cluster of one worker process per core (the scale
    # benchmark: distributed LightGBM against one machine's).
    "automl-flow-distributed": _flow_distributed,
    # ... and on its default local layout: one worker in the command's process.
    "automl-flow-distributed-local": _flow_distributed_local,
    "hgb-defaults": _runner(VENV, "hgb.py"),
    # The scale benchmark's baseline (make bench-scale): one LightGBM fit with default settings.
    "lgbm-defaults": _runner(VENV, "lgbm.py"),
    "flaml": _runner(BENCH_VENV, "flaml_runner.py"),
    "autogluon": _runner(BENCH_VENV, "autogluon_runner.py"),
    # Not in the default set: bagged and stacked, it needs minutes, not one (the 180 s runs).
    "autogluon-best": _runner(BENCH_VENV, "autogluon_runner.py", "--presets", "best_quality"),
}
DEFAULT_SYSTEMS = ["automl-flow", "hgb-defaults", "flaml", "autogluon"]


def run_system(
    system: str, dataset: Dataset, train: Path, test: Path, *, budget: float, seed: int,
    cores: list[int], folder: Path, limit: float,
) -> Outcome:
    """Never raises for a system's failure: it is an outcome with the reason, as the others."""
    job = _Job(dataset, train, test, budget, seed, cores, folder / system)
    job.folder.mkdir(parents=True, exist_ok=True)
    out = job.folder / "predictions.parquet"
    prefect_home = folder.parent / "prefect-home"
    env = thread_env(len(cores), {"PREFECT_HOME": str(prefect_home)})
    done = run_tree(SYSTEMS[system](job, out), cores=cores, limit=limit, env=env, cwd=job.folder,
                    log=job.folder / "train.log")
    base = {"dataset": dataset.name, "system": system, "metric": dataset.metric, "budget": budget,
            "peak_rss_mb": round(done.peak_rss_mb, 1),
            "peak_pss_mb": None if done.peak_pss_mb is None else round(done.peak_pss_mb, 1),
            "processes": [dataclasses.asdict(p) for p in done.processes]}
    info: dict[str, Any] = {}
    try:
        info, trained = _trained(done, limit)
        if system.startswith("automl-flow"):
            _predict_pkl(job, info, out, limit)
        value = score(dataset, pd.read_parquet(test)[dataset.target], pd.read_parquet(out))
    except Exception as exc:  # noqa: BLE001 - any failure is a result of the benchmark
        reason = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
        return Outcome(value=None, wall_seconds=round(done.seconds, 2), failure=reason[:300],
                       info=_measured(system, info, done, job.folder / "work", prefect_home),
                       **base)
    return Outcome(value=value, wall_seconds=round(trained - done.started, 2),
                   info=_measured(system, info, done, job.folder / "work", prefect_home), **base)


def _measured(system: str, info: dict[str, Any], done: Finished, workdir: Path,
              prefect_home: Path) -> dict[str, Any]:
    """info with what the harness measured besides: the monitor's own cost and, for automl-flow,
    its phases (what of them its records give, a failed run's too)."""
    info["monitor"] = {"polls": done.polls, "pss_every": done.pss_every,
                       "pss_seconds": round(done.pss_seconds, 2)}
    if system.startswith("automl-flow"):
        try:
            info.update(flow_phases(info, started=done.started, seconds=done.seconds,
                                    workdir=workdir, prefect_home=prefect_home))
        except Exception as exc:  # noqa: BLE001 - a record unread is no failure of the system
            info["phases_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return info


def _trained(done: Finished, limit: float) -> tuple[dict[str, Any], float]:
    """The runner's last JSON line, and when training ended (process end for the CLI)."""
    if done.returncode is None:
        raise TimeoutError(f"killed at the {limit:.0f} s limit")
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-1:] or ["no stderr"]
        raise RuntimeError(f"exit code {done.returncode}: {tail[0][:250]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError("no JSON result on stdout")
    info = json.loads(lines[-1])
    trained = info.pop("trained_at", done.started + done.seconds)
    return info, trained


def _predict_pkl(job: _Job, info: dict[str, Any], out: Path, limit: float) -> None:
    pkl = str(info["pkl_uri"]).removeprefix("file://")
    keep = {k: info[k] for k in ("best_model", "trials", "failed_trials", "stop_reason",
                                 "wall_seconds", "phase_seconds", "validation", "concurrency",
                                 "best_params")
            if k in info}
    # Each trial's model, score, fit seconds and status (the raw records only).
    keep["trials_run"] = [{k: row.get(k) for k in ("model", "fit_seconds", "status",
                                                   *info.get("metrics", {}))
                           if k in row} for row in info.get("leaderboard", [])]
    info.clear()
    info.update(keep)
    command = [str(VENV), str(RUNNERS / "predict_pkl.py"), *job.args(out), "--model", pkl]
    done = run_tree(command, cores=job.cores, limit=limit, env=thread_env(len(job.cores)),
                    cwd=job.folder, log=job.folder / "predict.log")
    if done.returncode != 0:
        raise RuntimeError(f"predicting with {pkl} failed: {done.stderr.strip()[-250:]}")
