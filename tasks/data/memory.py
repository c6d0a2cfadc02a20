"""Tables held in this process's memory, named by a `dataframe://` URL.

The Python API (flows.estimator) trains on a DataFrame the user already holds. The flow's
parameters are recorded by Prefect's API, so the frame itself must not be one: it is held here
for the length of the fit, and the configuration names it by a URL that gives its role, shape and
content digest. The ingest step (tasks.data.storage.read_table) takes it back without a copy; it
runs in the flow's own process on every task runner. pandas' copy-on-write keeps the user's frame
unchanged whatever the flow does with it.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pandas as pd

from tasks.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["SCHEME", "table_url", "is_held", "held", "held_table"]

SCHEME = "dataframe://"

_LOCK = threading.Lock()
_TABLES: dict[str, pd.DataFrame] = {}
_HOLDERS: Counter[str] = Counter()  # two fits of the same table may overlap


def table_url(frame: pd.DataFrame, role: str) -> str:
    """`dataframe://ROLE-ROWSxCOLS-DIGEST`: what the run records of an in-memory table."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update("\0".join(map(str, frame.columns)).encode())
    rows, columns = frame.shape
    return f"{SCHEME}{role}-{rows}x{columns}-{digest.hexdigest()[:16]}"


def is_held(url: str) -> bool:
    return url.startswith(SCHEME)


@contextmanager
def held(tables: Mapping[str, pd.DataFrame]) -> Iterator[None]:
    """Hold the tables under their URLs while the block runs."""
    with _LOCK:
        for url, frame in tables.items():
            _TABLES[url] = frame
            _HOLDERS[url] += 1
    try:
        yield
    finally:
        with _LOCK:
            for url in tables:
                _HOLDERS[url] -= 1
                if _HOLDERS[url] <= 0:
                    del _HOLDERS[url]
                    _TABLES.pop(url, None)


def held_table(url: str, what: str) -> pd.DataFrame:
    with _LOCK:
        frame = _TABLES.get(url)
    if frame is None:
        raise DataError(
            f"{what} '{url}' is an in-memory table that this process does not hold; an in-memory "
            "table trains only through the Python API's fit in the process that holds it, so "
            "write it to a file or blob store and pass that path or URL"
        )
    return frame
