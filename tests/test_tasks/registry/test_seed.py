"""A new SQLite store is a copy of an empty one MLflow made once (tasks.registry.tracking.seed):
it must work as a store MLflow made itself, and never replace a store that exists."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from tasks.registry.tracking import Tracker
from tasks.registry.tracking.seed import seed_sqlite, template_path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _rows(store, query):
    with closing(sqlite3.connect(store)) as db:
        return db.execute(query).fetchall()


def test_a_new_store_is_the_templates_copy_and_works_as_mlflows_own(cache, tmp_path,
                                                                     monkeypatch):
    first = tmp_path / "first"
    first.mkdir()
    Tracker(f"sqlite:///{first / 'mlflow.db'}", "one", None)
    template = template_path()
    assert template.is_relative_to(cache) and template.is_file()
    # A mark only the template holds: a store that has it was copied, not made by MLflow.
    with closing(sqlite3.connect(template)) as db, db:
        db.execute("INSERT INTO experiment_tags (key, value, experiment_id) "
                   "VALUES ('seeded', 'yes', 0)")
    second = tmp_path / "second"
    second.mkdir()
    monkeypatch.chdir(second)
    tracker = Tracker(f"sqlite:///{second / 'mlflow.db'}", "two", None)
    default = tracker.client.get_experiment("0")
    assert default.tags.get("seeded") == "yes"
    assert default.artifact_location == str(second / "mlruns" / "0")  # where MLflow puts it
    run_id = tracker.start("r", {"alpha": 1}, {"kind": "test"})
    tracker.log_outcome(run_id, {"score": 0.5}, {})
    tracker.finish(run_id, ok=True)
    run = tracker.client.get_run(run_id)
    assert run.data.params == {"alpha": "1"} and run.data.metrics["score"] == 0.5
    assert run.info.status == "FINISHED"
    assert not list(second.glob(".*.seed"))  # the partial copy is gone


def test_an_existing_store_is_never_replaced(cache, tmp_path):
    store = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{store}", "kept", None)
    run_id = tracker.start("r", {}, {})
    seed_sqlite(f"sqlite:///{store}")
    assert _rows(store, "SELECT run_uuid FROM runs") == [(run_id,)]


def test_other_stores_are_left_to_mlflow(cache, tmp_path):
    for uri in (f"sqlite:///{tmp_path / 'missing' / 'mlflow.db'}",  # no such folder
                f"sqlite:///{tmp_path / 'opts.db'}?timeout=5", "http://127.0.0.1:1"):
        seed_sqlite(uri)
    assert not (tmp_path / "opts.db").exists() and not (tmp_path / "missing").exists()
    assert not template_path().exists()


def test_a_store_made_meanwhile_is_not_replaced_by_the_copy(cache, tmp_path):
    # Another process may create the store between the check and the copy.
    from tasks.registry.tracking.seed import _copy_new

    Tracker(f"sqlite:///{tmp_path / 'first.db'}", "one", None)  # makes the template
    store = tmp_path / "mlflow.db"
    run_id = Tracker(f"sqlite:///{store}", "kept", None).start("r", {}, {})
    with pytest.raises(FileExistsError):
        _copy_new(template_path(), store)
    assert _rows(store, "SELECT run_uuid FROM runs") == [(run_id,)]
    assert not list(tmp_path.glob(".*.seed"))
