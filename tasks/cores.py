"""How many CPUs this process may use: its affinity mask, capped by its cgroup's CPU quota.

os.cpu_count() counts the host's CPUs. Under `taskset` / os.sched_setaffinity, a Kubernetes CPU
limit or `docker --cpus`, a run sized from it starts more trial workers and threads than it has
cores for, and they only slow each other down.

Python 3.13's os.process_cpu_count() is the affinity mask alone (cgroups are ignored, by
design). loky's cpu_count() (joblib) takes the smaller of the affinity and the quota, but reads
the quota only at the top of the cgroup mount (/sys/fs/cgroup/cpu.max,
/sys/fs/cgroup/cpu/cpu.cfs_quota_us): right inside a container with its own cgroup namespace,
missed for a process in a nested cgroup it sees from the outside (a systemd service's CPUQuota=,
a container without a cgroup namespace, a limit set on a parent). Hence this module: the
process's own cgroup (/proc/self/cgroup) and each of its parents, the smallest quota of them,
since a parent's limit caps its children too.

Nothing is cached: a few small files read per call, and a test (or a caller) that changes the
affinity sees the change at once.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["available_cores", "cgroup_cpu_limit"]

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cores() -> int:
    """The CPUs this process may run on, capped by its cgroup CPU quota; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        # A fractional quota rounds up, as loky (and the JVM's container support) do: a quota of
        # 1.5 CPUs lets two busy threads run at 75% each, one would leave half a CPU idle. One
        # worker more than whole CPUs costs some throttling; one fewer wastes up to half the quota.
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def cgroup_cpu_limit(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup, in CPUs (quota / period): the smallest over its
    cgroup and every parent, cgroup v2 (cpu.max) or v1 (cpu.cfs_quota_us, cpu.cfs_period_us).
    None when there is no quota, or no cgroup to read (not Linux)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        # hierarchy-ID:controller-list:path; v2 is "0::/path", v1 e.g. "4:cpu,cpuacct:/path".
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            # The v2 hierarchy: mounted at the root, or at root/unified on a hybrid system.
            mount = root if (root / "cgroup.controllers").exists() else root / "unified"
            limits += (q for d in _upwards(mount, path) if (q := _v2_quota(d)) is not None)
        elif "cpu" in controllers.split(","):
            # v1: the cpu controller's mount is named after its controllers ("cpu,cpuacct"),
            # usually with a "cpu" link to it.
            for mount in (root / controllers, root / "cpu"):
                if mount.is_dir():
                    limits += (q for d in _upwards(mount, path)
                               if (q := _v1_quota(d)) is not None)
                    break
    return min(limits, default=None)


def _upwards(mount: Path, path: str) -> Iterator[Path]:
    """The cgroup's folder under the mount, then each parent up to the mount itself. A folder
    that does not exist is skipped: without a cgroup namespace a container sees its own cgroup's
    path in /proc/self/cgroup but has that cgroup mounted as the root."""
    relative = PurePosixPath(path.lstrip("/"))
    if ".." in relative.parts:  # a cgroup outside this namespace's root: only the root is seen
        relative = PurePosixPath()
    for part in (relative, *relative.parents):
        folder = mount / part
        if folder.is_dir():
            yield folder


def _v2_quota(folder: Path) -> float | None:
    """cpu.max is "quota period" in microseconds, or "max period" for no limit."""
    try:
        quota, period = (folder / "cpu.max").read_text().split()
        return None if quota == "max" else _ratio(int(quota), int(period))
    except (OSError, ValueError):
        return None


def _v1_quota(folder: Path) -> float | None:
    """cpu.cfs_quota_us is -1 for no limit."""
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return _ratio(quota, period)


def _ratio(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None
