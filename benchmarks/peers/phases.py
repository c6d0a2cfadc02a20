"""automl-flow's run cut into phases, in seconds, from three records the run leaves behind:

- its `--json` result: `phase_seconds`, each step's own wall time as the flow measured it
  (flows/steps.py), and `wall_seconds`, the flow's budget clock at the end of its last step
  (tasks/budget.py: it counts from `automl`'s main(), start-up capped at half the budget);
- its Optuna journal (`<workdir>/optuna.journal`, tasks/search/study.py): when the first trial
  started;
- the ephemeral Prefect API's database (`$PREFECT_HOME/prefect.db`, which the benchmark points at
  its own folder): when the flow run's first step (a task run) started and when the flow run
  ended (its final state).

With the spawn and the exit the harness saw, these give (None where a record is missing):

- startup_seconds: spawn to the first step's start (interpreter, imports, Prefect's API);
- first_trial_seconds: spawn to the first trial's start;
- between_steps_seconds: the flow run's span from its first step to its end, less the steps'
  own seconds (Prefect's orchestration of the steps, starting and stopping the trial workers);
- exit_seconds: the flow run's end to the process's exit (printing the result, stopping
  Prefect's API and MLflow, the interpreter's exit).
"""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["flow_phases", "first_trial_start", "prefect_flow_times"]

# Records written before the spawn are another run's (the Prefect database is shared by every
# automl-flow run of one benchmark): a little slack for clocks read in different processes.
SLACK = 1.0


def flow_phases(info: dict[str, Any], *, started: float, seconds: float, workdir: Path,
                prefect_home: Path) -> dict[str, float | None]:
    """The phases of one run, spawned at `started` (epoch seconds) and exited `seconds` later."""
    ended = started + seconds
    first_trial = first_trial_start(workdir / "optuna.journal", started - SLACK)
    flow = prefect_flow_times(prefect_home / "prefect.db", started - SLACK, ended + SLACK)
    steps = sum(info.get("phase_seconds", {}).values())
    out: dict[str, float | None] = {
        "first_trial_seconds": None if first_trial is None else first_trial - started,
        "startup_seconds": None, "between_steps_seconds": None, "exit_seconds": None,
    }
    if flow is not None:
        first_step, flow_end = flow
        out["startup_seconds"] = None if first_step is None else first_step - started
        if flow_end is not None:  # None: killed at the limit while the flow ran
            out["exit_seconds"] = ended - flow_end
            if first_step is not None and "phase_seconds" in info:
                out["between_steps_seconds"] = max(0.0, flow_end - first_step - steps)
    return {k: None if v is None else round(v, 2) for k, v in out.items()}


def first_trial_start(journal: Path, after: float) -> float | None:
    """Epoch seconds when the journal's first trial (of a study begun after `after`) started in
    its worker."""
    if not journal.exists():
        return None
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = JournalStorage(JournalFileBackend(str(journal)))
    # The worker's own start (user attribute started_at, epoch) where recorded: a head-start
    # trial ran before the flow asked for it, which is when Optuna's datetime_start is.
    starts = [t.user_attrs.get("started_at")
              or t.datetime_start.timestamp()  # naive local time, as Optuna writes it
              for study in storage.get_all_studies()
              for t in storage.get_all_trials(study._study_id, deepcopy=False)  # noqa: SLF001
              if t.datetime_start is not None]
    return min((s for s in starts if s >= after), default=None)


def prefect_flow_times(
    database: Path, after: float, before: float,
) -> tuple[float | None, float | None] | None:
    """(first task run's start, flow run's end) of the flow run that started between `after` and
    `before` (epoch seconds), from Prefect's SQLite database; None without one. Either time is
    None when not recorded (no step started; the flow run never ended)."""
    if not database.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(database)) as db:
            runs = db.execute("SELECT id, start_time, end_time FROM flow_run "
                              "WHERE start_time IS NOT NULL").fetchall()
            mine = [(_epoch(start), run_id, end) for run_id, start, end in runs
                    if after <= _epoch(start) <= before]
            if not mine:
                return None
            _, run_id, end = max(mine)
            (first,) = db.execute("SELECT MIN(start_time) FROM task_run WHERE flow_run_id = ?",
                                  (run_id,)).fetchone()
    except sqlite3.Error:
        return None
    return (None if first is None else _epoch(first)), (None if end is None else _epoch(end))


def _epoch(stamp: str) -> float:
    """Prefect stores naive UTC timestamps."""
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()
