"""The Dask cluster of a distributed run: an existing one, or a local one."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from tasks.cores import available_cores

if TYPE_CHECKING:
    from collections.abc import Iterator

    from distributed import Client

    from tasks.config import AutoMLConfig

__all__ = ["cluster"]

@contextmanager
def cluster(config: AutoMLConfig) -> Iterator[Client]:
    """A client of the cluster at dask_address (waiting for max_nodes workers when given), or a
    local one: max_nodes worker processes sharing the cores this run may use, or, when max_nodes
    is empty, one worker inside this process with all of them. On one machine that is the
    lightest layout (the table is held once, beside this process's own imports, rather than
    beside every worker's) and as fast: the boosters use the cores as threads."""
    from distributed import Client, LocalCluster

    if config.dask_address:
        with Client(config.dask_address, timeout="30s") as client:
            if config.max_nodes:
                client.wait_for_workers(config.max_nodes, timeout=120)
            yield client
        return
    cores = available_cores()
    if config.max_nodes is None:
        with _system_allocator(), LocalCluster(
                n_workers=1, threads_per_worker=cores, processes=False,
                dashboard_address=None) as local, Client(local) as client:
            yield client
        return
    workers = config.max_nodes
    # pyarrow's own memory pool keeps what reading the partitions freed (about 130 MB per worker
    # at 1,000,000 rows); the system's allocator returns it.
    with LocalCluster(n_workers=workers, threads_per_worker=max(1, cores // workers),
                      processes=True, host="127.0.0.1", dashboard_address=None,
                      env={"ARROW_DEFAULT_MEMORY_POOL": "system"}) as local, \
            Client(local) as client:
        yield client


@contextmanager
def _system_allocator() -> Iterator[None]:
    """pyarrow on the system's allocator while this process is the worker (see cluster)."""
    import pyarrow

    before = pyarrow.default_memory_pool()
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    try:
        yield
    finally:
        pyarrow.set_memory_pool(before)
