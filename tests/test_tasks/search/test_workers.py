"""tasks.search.workers: trials in real worker processes, stopped at their time and memory limits."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import pytest
from trials import blood_payload

from tasks.search.spaces import load_space
from tasks.search.candidates import Candidate
from tasks.search.memory import run_rss_mb
from tasks.search.workers import TrialLimits, WorkerPool, close_pools, cut_off_pools, pool_for

@pytest.fixture(scope="module")
def pool(plugin, tmp_path_factory):
    payload = blood_payload(tmp_path_factory.mktemp("payload"))
    pool = WorkerPool(payload)
    yield pool
    pool.close()


def candidate(number: int, family: str) -> Candidate:
    return Candidate(number, family, dict(load_space(family).defaults[0]))


def workers_of(pool: WorkerPool) -> set[int]:
    me = psutil.Process()
    return {p.pid for p in me.children() if p.pid in {w.process.pid for w in pool._all}}


def test_trials_reuse_a_worker_that_loaded_the_data_once(pool):
    first = pool.run(candidate(0, "logistic_regression"), TrialLimits())
    assert first.ok, first.error
    # The payload file is gone: a worker that read it per trial would fail now.
    moved = Path(pool.payload.path).rename(pool.payload.path + ".away")
    try:
        second = pool.run(candidate(1, "decision_tree"), TrialLimits())
    finally:
        moved.rename(pool.payload.path)
    assert second.ok, second.error
    assert first.worker == second.worker and first.worker.endswith(f":{os.getpid()}")


def test_a_trial_past_its_time_limit_is_killed_and_the_slot_is_free_again(pool):
    # An idle worker to take the trial: the first test of the pool in this process (xdist) would
    # otherwise start the worker during the trial, and none would be seen to go.
    assert pool.run(candidate(20, "logistic_regression"), TrialLimits()).ok
    before = workers_of(pool)
    started = time.monotonic()
    result = pool.run(candidate(2, "sleepy"), TrialLimits(seconds=2.0))
    stopped = time.monotonic() - started
    assert not result.ok and result.reason == "timeout"
    assert result.error.startswith("timeout: stopped after 2 s")
    assert stopped < 10, f"the trial was stopped {stopped:.1f}s after it started, limit 2 s"
    gone = before - workers_of(pool)
    assert gone and not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                            for pid in gone)
    after = pool.run(candidate(3, "logistic_regression"), TrialLimits())
    assert after.ok, after.error


def test_the_budget_stops_a_trial_with_its_own_reason(pool):
    result = pool.run(candidate(4, "sleepy"), TrialLimits(seconds=1.0, seconds_reason="budget"))
    assert result.reason == "budget" and "time budget ran out" in result.error


def test_a_running_trial_stops_when_the_search_moves_its_deadline_earlier(pool):
    # A trial started before any model existed may run to the budget's end; once one exists
    # the search cuts the running trials off at its deadline, here 1 s after the trial began.
    shared = pool_for(pool.payload)
    try:
        started = time.monotonic()
        threading.Timer(1.0, cut_off_pools, (pool.payload, time.time())).start()
        result = shared.run(candidate(6, "sleepy"), TrialLimits(seconds=120, seconds_reason="budget"))
        stopped = time.monotonic() - started
    finally:
        close_pools(pool.payload)
    assert result.reason == "budget" and "time budget ran out" in result.error
    assert stopped < 10, f"the trial stopped {stopped:.1f}s after it started, cut off after 1 s"


def test_a_trial_over_its_memory_cap_is_stopped(pool):
    result = pool.run(candidate(5, "hungry"), TrialLimits(seconds=120, memory_mb=1000))
    assert not result.ok and result.reason == "memory", result.error
    assert "more than max_memory_mb_per_iteration=1000" in result.error


def test_a_trial_that_pushes_the_run_over_its_memory_limit_is_stopped(pool):
    # max_memory_mb counts the whole run: this process and every worker, not the trial's alone.
    held = run_rss_mb()
    limit = held + 600
    result = pool.run(candidate(13, "hungry"), TrialLimits(seconds=120, run_memory_mb=limit))
    assert not result.ok and result.reason == "memory", result.error
    assert f"more than max_memory_mb={limit:g}" in result.error
    used = float(result.error.split("the run used ")[1].split(" MB")[0])
    assert limit < used < limit + 1500, result.error  # stopped soon after it crossed
    # Its rise is reported, for the run's memory gate.
    assert result.peak_memory_mb - result.start_memory_mb > 400, result


def test_each_trial_reports_its_memory_at_start_and_its_peak(pool):
    greedy = pool.run(candidate(14, "greedy"), TrialLimits())
    assert greedy.ok and 0 < greedy.start_memory_mb
    assert greedy.peak_memory_mb - greedy.start_memory_mb > 250, greedy


def test_each_trial_reports_its_own_peak_memory(pool):
    # The worker's high-water mark starts afresh for every trial: a small trial after a greedy
    # one reports its own peak, not the 300 MB its predecessor took.
    greedy = pool.run(candidate(10, "greedy"), TrialLimits())
    small = pool.run(candidate(11, "logistic_regression"), TrialLimits())
    assert greedy.ok and small.ok and greedy.worker == small.worker
    assert 100 < small.peak_memory_mb < greedy.peak_memory_mb - 250, (small, greedy)


def test_a_trial_that_raises_is_a_failed_result_and_the_worker_lives_on(pool):
    result = pool.run(candidate(6, "raising"), TrialLimits())
    assert not result.ok and result.reason == "error"
    assert "ValueError: this family always fails" in result.error
    assert pool.run(candidate(7, "logistic_regression"), TrialLimits()).worker == result.worker


def test_a_worker_that_dies_is_a_failed_trial_and_is_replaced(pool):
    result = pool.run(candidate(8, "crashing"), TrialLimits())
    assert not result.ok and "the trial worker died (exit code 3)" in result.error
    assert pool.run(candidate(9, "logistic_regression"), TrialLimits()).ok


def test_an_idle_worker_killed_from_outside_is_replaced_unseen(pool):
    assert pool.run(candidate(12, "logistic_regression"), TrialLimits()).ok
    idle = [w for w in pool._all if w.alive]
    for worker in idle:
        worker.process.kill()  # an OOM killer or an operator, between two trials
        worker.process.wait()
    result = pool.run(candidate(13, "logistic_regression"), TrialLimits())
    assert result.ok, result.error
    assert workers_of(pool).isdisjoint(w.process.pid for w in idle)


def test_closing_a_pool_while_a_trial_runs_stops_it_and_both_sides_go_on(plugin, tmp_path):
    # The search's end closes the pool while a head-start trial nobody claimed still runs: its
    # thread finds the worker gone as the pool stops it, and neither may raise.
    pool = WorkerPool(blood_payload(tmp_path))
    results = []
    runner = threading.Thread(target=lambda: results.append(
        pool.run(candidate(0, "sleepy"), TrialLimits(seconds=60))))
    runner.start()
    deadline = time.monotonic() + 60
    while not any(w.sent_at for w in pool._all) and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(5):
        pool.close()
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert len(results) == 1 and not results[0].ok and results[0].reason == "error"
