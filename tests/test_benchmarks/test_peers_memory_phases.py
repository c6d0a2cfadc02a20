"""benchmarks.peers' memory by process and automl-flow's phases: run_tree's accounting on a real
process tree, the records the phases are read from, and the report's two tables."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import sys
import time
from datetime import UTC, datetime

import pytest

from benchmarks.peers.phases import first_trial_start, flow_phases, prefect_flow_times
from benchmarks.peers.process import PSS_EVERY, role_of, run_tree, short_name, thread_env
from benchmarks.peers.report import by_role, markdown, memory_rows, phase_rows, rss_ratio
from benchmarks.peers.systems import Outcome

GROW = "import time; x = bytearray(50 * 2**20); time.sleep(2)  # "
PARENT = f"""
import subprocess, sys
kids = [subprocess.Popen([sys.executable, "-c", {GROW + "from tasks.search.trial_process"!r}]),
        subprocess.Popen([sys.executable, "-c", {GROW + "prefect.server.api"!r}]),
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])]
for kid in kids:
    kid.wait()
"""


@pytest.mark.serial  # timing-sensitive: runs alone (make test)
def test_run_tree_keeps_each_process_peak_and_role(tmp_path):
    parent = tmp_path / "parent.py"
    parent.write_text(PARENT)
    done = run_tree([sys.executable, str(parent)], cores=[0], limit=30, env=thread_env(1),
                    cwd=tmp_path, log=tmp_path / "log")
    assert done.returncode == 0
    roles = {p.role: p for p in done.processes}
    assert sorted(p.role for p in done.processes) == ["api-server", "other", "root", "worker"]
    assert roles["root"].name.endswith("parent.py") and roles["root"].peak_rss_mb < 40
    assert roles["worker"].peak_rss_mb >= 50 and roles["api-server"].peak_rss_mb >= 50
    assert roles["other"].peak_rss_mb < 40 and roles["other"].name.endswith("time.sleep(1)")
    # (the polls' times are rounded to 0.1 s: up to 0.05 s past the exact run time)
    assert all(0 <= p.first_seen <= p.last_seen <= done.seconds + 0.05 for p in done.processes)
    # the tree's peak is their sum at one poll; PSS counts the shared interpreter pages once
    assert done.peak_rss_mb >= 100 + roles["root"].peak_rss_mb
    assert done.peak_pss_mb is not None and 100 <= done.peak_pss_mb <= done.peak_rss_mb
    assert done.pss_every == PSS_EVERY and done.polls >= 5 and done.seconds < 5


def test_roles_and_names_from_command_lines():
    worker = ["/v/bin/python", "-c", "from tasks.search.trial_process import serve; serve()", "/p"]
    api = ["/v/bin/python", "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
    assert role_of(worker) == "worker" and role_of(api) == "api-server"
    assert role_of(["/usr/bin/git", "status"]) == "other"
    assert role_of(["/x/python", "-m", "flows.api", "123"]) == "api-server"  # the command's own
    assert short_name(api) == "python -m uvicorn"
    assert short_name(worker) == "python -c from tasks.search.trial_proces"
    assert short_name(["/v/bin/python", "/x/hgb.py", "--train", "t"]) == "python hgb.py"
    assert short_name([], "zombie") == "zombie"


def test_first_trial_start_from_an_optuna_journal(tmp_path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = tmp_path / "optuna.journal"
    before = time.time()
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(journal))))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    first = first_trial_start(journal, after=before - 1)
    assert first is not None and before - 1 <= first <= time.time()
    assert first == min(t.datetime_start for t in study.trials).timestamp()
    assert first_trial_start(journal, after=time.time() + 60) is None  # an older run's study
    assert first_trial_start(tmp_path / "none.journal", after=0) is None


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None).isoformat(" ")


def _prefect_db(path, runs):
    """A database with the columns of Prefect's flow_run and task_run the phases read."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE flow_run (id TEXT, start_time TEXT, end_time TEXT)")
        db.execute("CREATE TABLE task_run (id TEXT, flow_run_id TEXT, start_time TEXT)")
        for run_id, start, end, tasks in runs:
            db.execute("INSERT INTO flow_run VALUES (?, ?, ?)",
                       (run_id, _stamp(start), None if end is None else _stamp(end)))
            for i, task_start in enumerate(tasks):
                db.execute("INSERT INTO task_run VALUES (?, ?, ?)",
                           (f"{run_id}-{i}", run_id, _stamp(task_start)))
    db.close()


def test_flow_phases_from_the_result_the_journal_and_prefect(tmp_path, monkeypatch):
    spawn = 1_800_000_000.0
    home = tmp_path / "prefect-home"
    home.mkdir()
    # an earlier run's flow in the same database, then ours: first step 6 s after the spawn
    _prefect_db(home / "prefect.db", [("old", spawn - 100, spawn - 50, [spawn - 99]),
                                      ("ours", spawn + 5.5, spawn + 40, [spawn + 8, spawn + 6])])
    assert prefect_flow_times(home / "prefect.db", spawn - 1, spawn + 45) == (spawn + 6, spawn + 40)
    assert prefect_flow_times(tmp_path / "no.db", 0, spawn) is None
    monkeypatch.setattr("benchmarks.peers.phases.first_trial_start", lambda path, after: spawn + 9)
    info = {"phase_seconds": {"ingest": 0.5, "search": 25.0, "refit": 3.0}, "wall_seconds": 38.0}
    phases = flow_phases(info, started=spawn, seconds=45.0, workdir=tmp_path, prefect_home=home)
    assert phases == {"first_trial_seconds": 9.0, "startup_seconds": 6.0,
                      "between_steps_seconds": 5.5, "exit_seconds": 5.0}
    # startup + steps + between + exit is the wall
    assert sum(phases[k] for k in ("startup_seconds", "between_steps_seconds", "exit_seconds")) \
        + sum(info["phase_seconds"].values()) == 45.0
    alone = flow_phases(info, started=spawn, seconds=45.0, workdir=tmp_path,
                        prefect_home=tmp_path / "elsewhere")
    assert alone["startup_seconds"] is None and alone["exit_seconds"] is None
    # killed at the limit: the flow run never ended, and there is no result
    killed = tmp_path / "killed"
    killed.mkdir()
    _prefect_db(killed / "prefect.db", [("ours", spawn + 5, None, [spawn + 7])])
    cut = flow_phases({}, started=spawn, seconds=120.0, workdir=tmp_path, prefect_home=killed)
    assert cut == {"first_trial_seconds": 9.0, "startup_seconds": 7.0,
                   "between_steps_seconds": None, "exit_seconds": None}


def _proc(pid, role, mb, name="python x"):
    return {"pid": pid, "role": role, "name": name, "peak_rss_mb": mb, "first_seen": 0.0,
            "last_seen": 1.0}


def _ours(dataset, tree, workers, startup, search, exit_, value=0.9):
    processes = [_proc(1, "root", 600.0, "python automl"), _proc(2, "api-server", 250.0),
                 *(_proc(10 + i, "worker", mb) for i, mb in enumerate(workers))]
    info = {"phase_seconds": {"ingest": 0.2, "search": search}, "wall_seconds": startup + search,
            "startup_seconds": startup, "first_trial_seconds": startup + 3,
            "between_steps_seconds": 1.0, "exit_seconds": exit_,
            "monitor": {"polls": 200, "pss_every": 1, "pss_seconds": 1.5}}
    return Outcome(dataset, "automl-flow", "roc_auc", value, startup + search + exit_ + 1.2, 60.0,
                   tree, info=info, peak_pss_mb=tree * 0.8, processes=processes)


def _peer(dataset, system, tree, value=0.8):
    return Outcome(dataset, system, "roc_auc", value, 60.0, 60.0, tree,
                   processes=[_proc(1, "root", tree)])


def _runs():
    return [
        _ours("a", 1500.0, [400.0, 450.0], startup=10.0, search=30.0, exit_=4.0),
        _peer("a", "autogluon", 1000.0), _peer("a", "hgb-defaults", 200.0),
        _ours("b", 1200.0, [300.0, 350.0, 500.0], startup=8.0, search=40.0, exit_=6.0),
        _peer("b", "autogluon", 1500.0), _peer("b", "hgb-defaults", 150.0),
        _ours("c", 900.0, [300.0], startup=12.0, search=20.0, exit_=5.0),
        _peer("c", "autogluon", 600.0), _peer("c", "hgb-defaults", 100.0),
    ]


def test_memory_by_role_and_ratios():
    runs = _runs()
    roles = by_role(runs[3].processes)
    assert roles["worker"] == {"count": 3, "max": 500.0, "sum": 1150.0,
                               "names": ["python x"] * 3}
    assert roles["root"]["max"] == 600.0 and "other" not in roles
    assert rss_ratio(runs, "automl-flow") == {"a": 1.5, "b": 0.8, "c": 1.5}
    rows = {r["dataset"]: r for r in memory_rows(runs)}
    assert rows["b"]["workers"] == 3 and rows["b"]["worker_max"] == 500.0
    assert rows["b"]["worker_sum"] == 1150.0 and rows["b"]["ratio"] == 0.8
    assert rows["c"]["others"] == 0 and rows["c"]["other_sum"] is None


def test_phase_rows_median_and_the_dataset_of_the_max():
    rows = {label: rest for label, *rest in phase_rows(_runs())}
    assert rows["start-up: spawn to first step"] == [10.0, 12.0, "c", 3]
    assert rows["spawn to first trial"] == [13.0, 15.0, "c", 3]
    assert rows["step: search"] == [30.0, 40.0, "b", 3]
    assert rows["exit: flow run's end to process exit"] == [5.0, 6.0, "b", 3]
    labels = list(rows)
    assert labels.index("spawn to first trial") < labels.index("step: ingest") \
        < labels.index("step: search") < labels.index("exit: flow run's end to process exit")
    # a failed run has no result (no steps' seconds): it counts where it has a value
    failed = _ours("d", 100.0, [], startup=99.0, search=1.0, exit_=1.0, value=None)
    failed.info.pop("phase_seconds")
    failed.info.pop("wall_seconds")
    with_failed = {label: rest for label, *rest in phase_rows([*_runs(), failed])}
    assert with_failed["start-up: spawn to first step"] == [11.0, 99.0, "d", 4]
    assert with_failed["step: search"] == rows["step: search"]


def test_markdown_has_the_memory_columns_and_both_tables():
    text = markdown(_runs(), ["automl-flow", "hgb-defaults", "autogluon"], ["# t"])
    assert "| median peak RSS MB | max RSS ratio vs autogluon | failures |" in text
    assert "| automl-flow | 1.00 | 0.77 | 0.92 | 1200 | 1200 | 1.50 (a) | 0 |" in text
    assert "| autogluon | 2.50 | 1.00 | 1.00 | 1033 | 1000 | - | 0 |" in text
    assert ("automl-flow phases (seconds, median over datasets, and the dataset with the max)"
            in text)
    assert "| start-up: spawn to first step | 10.0 | 12.0 | c | 3 |" in text
    assert "| step: search | 30.0 | 40.0 | b | 3 |" in text
    assert "automl-flow peak RSS by process (MB)" in text
    assert (("| dataset | tree peak | tree PSS peak | flow (root) | API server | workers "
            "| worker max | workers sum | other (sum) | autogluon tree peak | tree / autogluon |")
            in text)
    assert "| b | 1200 | 960 | 600 | 250 | 3 | 500 | 1150 | - | 1500 | 0.80 |" in text
    assert "| median | 1200 | 960 | 600 | 250 | 2 | 450 | 850 | - | 1000 | 1.50 |" in text
    assert ("Reading PSS cost the monitor 4.5 CPU s over 139 s of automl-flow's runs "
            "(3.2% of a core; read every poll)") in text
    # without AutoGluon in the run, no reference columns
    alone = markdown([o for o in _runs() if o.system != "autogluon"],
                     ["automl-flow", "hgb-defaults"], ["# t"])
    assert "| b | 1200 | 960 | 600 | 250 | 3 | 500 | 1150 | - |\n" in alone


def test_raw_results_keep_the_new_fields_and_old_ones_still_load(tmp_path):
    from benchmarks.peers.__main__ import main

    raw = tmp_path / "run.jsonl"
    old = {"dataset": "a", "system": "flaml", "metric": "roc_auc", "value": 0.8,
           "wall_seconds": 60.0, "budget": 60.0, "peak_rss_mb": 300.0, "failure": None, "info": {}}
    lines = [json.dumps(dataclasses.asdict(o)) for o in _runs()[:2]] + [json.dumps(old)]
    raw.write_text("\n".join(lines) + "\n")
    again = Outcome(**json.loads(lines[0]))
    assert again == _runs()[0]
    main(["--from-raw", str(raw), "--out", str(tmp_path / "t.md")])
    text = (tmp_path / "t.md").read_text()
    assert "| a | 1500 | 1200 | 600 | 250 | 2 | 450 | 850 | - | 1000 | 1.50 |" in text
    assert "| flaml | 2.50 | 1.00 | 1.00 | 300 | 300 | 0.30 (a) | 0 |" in text


def test_an_old_result_without_phases_or_processes_gives_neither_table():
    o = Outcome("a", "automl-flow", "roc_auc", 0.9, 60.0, 60.0, 100.0,
                info={"wall_seconds": 55.0, "trials": 3})
    text = markdown([o], ["automl-flow"], ["# t"])
    assert "automl-flow phases" not in text and "peak RSS by process" not in text
    assert "| automl-flow | 1.00 | 1.00 | 1.00 | 100 | 100 | - | 0 |" in text
