"""The run sizes itself from the cores it may use: the affinity mask and the cgroup CPU quota,
not the host's core count."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks import cores
from tasks.cores import available_cores, cgroup_cpu_limit

ROOT = Path(__file__).resolve().parents[2]
AUTOML = Path(sys.executable).with_name("automl")


# --- the cgroup files, faked under tmp_path ---------------------------------------------------


def fake_cgroups(tmp_path: Path, membership: str, files: dict[str, str],
                 v2_root: bool = True) -> tuple[Path, Path]:
    """A /proc/self/cgroup of `membership` and a /sys/fs/cgroup holding `files` (paths relative
    to the mount root); on a v2 root, cgroup.controllers marks it as the unified hierarchy."""
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    root = tmp_path / "sys-fs-cgroup"
    root.mkdir()
    if v2_root:
        (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return proc, root


@pytest.mark.parametrize(("cpu_max", "limit"), [
    ("max 100000\n", None),
    ("150000 100000\n", 1.5),
    ("50000 100000\n", 0.5),
    ("200000 50000\n", 4.0),
])
def test_v2_quota_of_the_own_cgroup(tmp_path, cpu_max, limit):
    proc, root = fake_cgroups(tmp_path, "0::/kubepods/pod1/ctr\n",
                              {"kubepods/pod1/ctr/cpu.max": cpu_max})
    assert cgroup_cpu_limit(proc, root) == limit


def test_v2_a_parent_smaller_than_the_own_cgroup_wins(tmp_path):
    proc, root = fake_cgroups(tmp_path, "0::/system.slice/automl.service\n", {
        "cpu.max": "max 100000\n",
        "system.slice/cpu.max": "100000 100000\n",
        "system.slice/automl.service/cpu.max": "300000 100000\n",
    })
    assert cgroup_cpu_limit(proc, root) == 1.0


def test_v2_the_own_cgroup_smaller_than_its_parent_wins(tmp_path):
    proc, root = fake_cgroups(tmp_path, "0::/a/b\n", {
        "a/cpu.max": "400000 100000\n", "a/b/cpu.max": "150000 100000\n",
    })
    assert cgroup_cpu_limit(proc, root) == 1.5


def test_v2_a_namespaced_container_sees_its_quota_at_the_root(tmp_path):
    proc, root = fake_cgroups(tmp_path, "0::/\n", {"cpu.max": "250000 100000\n"})
    assert cgroup_cpu_limit(proc, root) == 2.5


def test_v2_a_cgroup_outside_the_namespace_reads_the_root(tmp_path):
    proc, root = fake_cgroups(tmp_path, "0::/../other\n", {"cpu.max": "100000 100000\n"})
    assert cgroup_cpu_limit(proc, root) == 1.0


def test_v2_on_a_hybrid_system_is_under_unified(tmp_path):
    proc, root = fake_cgroups(tmp_path, "1:name=systemd:/\n0::/user.slice\n", {
        "unified/cgroup.controllers": "", "unified/user.slice/cpu.max": "50000 100000\n",
    }, v2_root=False)
    assert cgroup_cpu_limit(proc, root) == 0.5


@pytest.mark.parametrize(("quota", "limit"), [("-1\n", None), ("150000\n", 1.5)])
def test_v1_quota_and_period(tmp_path, quota, limit):
    proc, root = fake_cgroups(tmp_path, "5:memory:/x\n4:cpu,cpuacct:/batch/job\n3:cpuset:/\n", {
        "cpu,cpuacct/batch/job/cpu.cfs_quota_us": quota,
        "cpu,cpuacct/batch/job/cpu.cfs_period_us": "100000\n",
    }, v2_root=False)
    assert cgroup_cpu_limit(proc, root) == limit


def test_v1_a_parent_quota_applies_and_a_missing_path_falls_back_to_the_mount(tmp_path):
    # A container without a cgroup namespace: /proc/self/cgroup names /docker/abc, but its
    # cgroup is what is mounted (no docker/abc folder inside).
    proc, root = fake_cgroups(tmp_path, "4:cpu,cpuacct:/docker/abc\n", {
        "cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n",
    }, v2_root=False)
    assert cgroup_cpu_limit(proc, root) == 2.0


def test_no_cgroup_file_or_unreadable_values_mean_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path) is None
    proc, root = fake_cgroups(tmp_path, "0::/a\n", {"a/cpu.max": "garbage\n"})
    assert cgroup_cpu_limit(proc, root) is None


@pytest.mark.parametrize(("affinity", "limit", "expected"), [
    ({0, 1, 2, 3}, None, 4),
    ({0, 1, 2, 3}, 1.5, 2),  # a fractional quota rounds up
    ({0, 1, 2, 3}, 0.5, 1),
    ({0}, 8.0, 1),  # the affinity mask is smaller
])
def test_available_cores_is_the_smaller_of_affinity_and_quota(monkeypatch, affinity, limit,
                                                               expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity)
    monkeypatch.setattr(cores, "cgroup_cpu_limit", lambda: limit)
    assert available_cores() == expected


def test_available_cores_follows_an_affinity_change_at_once():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no os.sched_setaffinity on this platform")
    before = os.sched_getaffinity(0)
    if len(before) < 2:
        pytest.skip("this process may use one core only: nothing to narrow")
    try:
        os.sched_setaffinity(0, {min(before)})
        assert available_cores() == 1  # nothing cached
    finally:
        os.sched_setaffinity(0, before)
    limit = cgroup_cpu_limit()
    assert available_cores() == (len(before) if limit is None
                                 else max(1, min(len(before), math.ceil(limit))))


# --- real processes under taskset ---------------------------------------------------------------


def needs_taskset() -> str:
    """taskset's path; the test skips without it, or with one core (pinning changes nothing)."""
    taskset = shutil.which("taskset")
    if taskset is None:
        pytest.skip("taskset (util-linux) is not installed")
    if available_cores() < 2:
        pytest.skip("this machine gives the run one core: pinning to one changes nothing")
    return taskset


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    table = pd.DataFrame(X, columns=["a", "b", "c"])
    table["y"] = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=120) > 0).astype(int)
    path = tmp_path / "tiny.csv"
    table.to_csv(path, index=False)
    return path


SIZED = """
import json, sys
from tasks.config import parse_config
config = parse_config(training_data=sys.argv[1], target="y", workdir=sys.argv[2])
print(json.dumps({"concurrency": config.concurrency, "threads": config.threads_per_trial}))
"""


def sized(csv: Path, workdir: Path, pinned: bool) -> dict[str, int]:
    command = [sys.executable, "-c", SIZED, str(csv), str(workdir)]
    if pinned:
        command = [needs_taskset(), "-c", str(min(os.sched_getaffinity(0))), *command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_config_sizes_itself_to_the_affinity_mask(tiny_csv, tmp_path):
    needs_taskset()
    assert sized(tiny_csv, tmp_path, pinned=True) == {"concurrency": 1, "threads": 1}
    free = sized(tiny_csv, tmp_path, pinned=False)
    assert free["concurrency"] == available_cores() > 1
    assert free["threads"] == 1


WORKER = "from tasks.search.trial_process import serve"


@pytest.mark.slow
def test_a_search_pinned_to_one_core_runs_one_worker_of_one_thread(prefect_api, tiny_csv,
                                                                     tmp_path):
    """`automl train` under `taskset -c N`: the JSON says what the run sized itself to, and the
    processes show it: one trial worker at a time, pinned to that core, with one thread."""
    taskset = needs_taskset()
    import psutil
    from prefect.settings import PREFECT_API_URL

    core = min(os.sched_getaffinity(0))
    workdir = tmp_path / "work"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run = subprocess.Popen(
        [taskset, "-c", str(core), str(AUTOML), "train", "--data", str(tiny_csv),
         "--target", "y", "--iterations", "3", "--workdir", str(workdir), "--json"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen: dict[int, tuple[list[int], str | None]] = {}  # worker pid: affinity, OMP_NUM_THREADS
    most_at_once = 0
    try:
        parent = psutil.Process(run.pid)
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline:
            alive = 0
            for child in parent.children(recursive=True):
                try:
                    if WORKER not in " ".join(child.cmdline()):
                        continue
                    alive += 1
                    if child.pid not in seen:
                        seen[child.pid] = (child.cpu_affinity(),
                                           child.environ().get("OMP_NUM_THREADS"))
                except psutil.Error:  # it ended between the listing and the look
                    continue
            most_at_once = max(most_at_once, alive)
            time.sleep(0.05)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err[-3000:]
    result = json.loads(out)
    assert result["trials"] == 3
    assert result["concurrency"] == 1 and result["threads_per_trial"] == 1
    assert seen, "no trial worker process was seen"
    assert most_at_once == 1, seen
    assert all(affinity == [core] and threads == "1" for affinity, threads in seen.values()), seen
