"""A new SQLite store starts as a copy of an empty one.

MLflow creates a SQLite store by running every one of its schema migrations, about 2.5 s of CPU
on a 2-core machine, and a training opens its store beside the search's first trials. So the
first store made with an MLflow version is also kept, empty, in the user's cache folder, and each
new store after it is a copy of that file (milliseconds), the default experiment's row pointed
where MLflow itself would have pointed it. Anything unexpected (no cache folder, a store that
appeared meanwhile, a URI with options) leaves the creation to MLflow, as before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

__all__ = ["seed_sqlite", "template_path"]

_PREFIX = "sqlite:///"


def template_path() -> Path:
    """The empty store of the installed MLflow version, in the user's cache folder."""
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "automl-flow" / f"mlflow-{mlflow.__version__}-empty.db"


def seed_sqlite(tracking_uri: str) -> None:
    """When tracking_uri names a SQLite file that does not exist yet, create it from the empty
    template (making the template first, the one time MLflow's migrations run)."""
    if not tracking_uri.startswith(_PREFIX) or "?" in tracking_uri:
        return
    target = Path(tracking_uri[len(_PREFIX):])
    if target.exists() or not target.parent.is_dir():
        return
    with contextlib.suppress(OSError, sqlite3.Error):
        template = template_path()
        if not template.exists():
            _make_template(template)
        _copy_new(template, target)


def _make_template(template: Path) -> None:
    from mlflow.tracking import MlflowClient

    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
        made = Path(tmp) / "empty.db"
        MlflowClient(tracking_uri=f"{_PREFIX}{made}").search_experiments()
        os.replace(made, template)  # whole or absent, whichever process made it


def _copy_new(template: Path, target: Path) -> None:
    """The template's copy at target, never over a store another process made meanwhile."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.seed")
    try:
        shutil.copyfile(template, partial)
        _point_default_experiment(partial)
        os.link(partial, target)  # fails if target exists: a live store is never replaced
    finally:
        partial.unlink(missing_ok=True)


def _point_default_experiment(store: Path) -> None:
    """The default experiment as MLflow would have made it in this store: its artifacts in
    ./mlruns/0 of the working folder, created now."""
    location = str(Path(os.path.abspath("mlruns")) / "0")
    now = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                   "last_update_time = ? WHERE experiment_id = 0", (location, now, now))
