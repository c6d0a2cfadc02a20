"""tasks.search.head_start: the first trials run before the flow asks for them, in real worker
processes, and the flow's search claims each result once; tasks.search.workers' spare workers,
started before the data exists."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from support import dataset_path
from trials import blood_payload

from tasks.config import parse_config
from tasks.search import head_start
from tasks.search.candidates import Candidate
from tasks.search.head_start import HeadStart
from tasks.search.spaces import load_space
from tasks.search.worker_process import start_spares, stop_spares
from tasks.search.workers import TrialLimits, WorkerPool, close_pools, pool_for


@pytest.fixture(scope="module")
def payload(plugin, tmp_path_factory):
    return blood_payload(tmp_path_factory.mktemp("payload"))


def candidate(number: int, family: str) -> Candidate:
    return Candidate(number, family, dict(load_space(family).defaults[0]))


def test_a_planned_trial_is_claimed_once_with_the_asked_candidate(payload):
    plan = [candidate(0, "logistic_regression"), candidate(1, "decision_tree")]
    start = HeadStart(payload, plan, lambda: TrialLimits(), 1)
    try:
        asked = Candidate(0, "logistic_regression", dict(plan[0].params), prune_bars=(0.5,))
        result = start.claim(asked)  # running or done: its result, waited for
        assert result is not None and result.ok, result and result.error
        assert result.candidate is asked  # the search's own candidate, as if it had run it
        assert result.started_at > 0 and result.ended_at >= result.started_at
        assert start.claim(asked) is None  # once: a second ask of it runs it again
        other = Candidate(2, "decision_tree", {**plan[1].params, "max_depth": 3})
        assert start.claim(other) is None  # another configuration of the family
    finally:
        start.hold()
        close_pools(payload)


def test_once_held_a_planned_trial_not_started_is_the_search_s_own(payload):
    plan = [candidate(0, "sleepy"), candidate(1, "logistic_regression")]
    start = HeadStart(payload, plan, lambda: TrialLimits(seconds=3.0), 1)
    try:
        time.sleep(0.5)  # the sleepy trial holds the one thread
        start.hold()
        assert start.claim(plan[1]) is None  # cancelled before it started
        began = time.monotonic()
        slept = start.claim(plan[0])  # running: waited for, to its time limit
        assert slept is not None and slept.reason == "timeout"
        assert time.monotonic() - began < 15
    finally:
        close_pools(payload)


def test_a_pool_takes_a_spare_worker_started_before_its_data(payload):
    start_spares(1, threads=payload.threads)
    spares = {p.pid for p in psutil.Process().children()}
    try:
        time.sleep(0.5)
        pool = WorkerPool(payload)
        result = pool.run(candidate(0, "logistic_regression"), TrialLimits())
        assert result.ok, result.error
        assert {w.process.pid for w in pool._all} <= spares  # no new process was started
        pool.close()
    finally:
        stop_spares()


def test_a_spare_never_given_data_is_stopped_and_leaves_nothing(payload):
    before = {p.pid for p in psutil.Process().children()}
    start_spares(2, threads=payload.threads + 1)  # threads no pool of this payload asks for
    spares = [p for p in psutil.Process().children() if p.pid not in before]
    assert len(spares) == 2
    pool = pool_for(payload)
    try:
        pool.warm(1)  # starts its own worker: the spares have other thread counts
        assert not {w.process.pid for w in pool._all} & {p.pid for p in spares}
    finally:
        close_pools(payload)
        stop_spares()
    gone, alive = psutil.wait_procs(spares, timeout=10)
    assert not alive


def test_the_command_s_preparation_is_taken_by_its_own_config_only(plugin, tmp_path):
    config = parse_config(training_data=str(dataset_path("blood_transfusion")),
                          target="donated_march_2007", iterations=2, workdir=str(tmp_path))
    prepared = head_start.prepare(config, time.time(), 0.0)
    try:
        twin = config.model_copy()
        assert head_start.take_prepared(twin) is None  # an equal config is another run
        taken = head_start.take_prepared(config)
        assert taken is prepared and head_start.take_prepared(config) is None
        assert os.path.exists(prepared.payload.path)
        first = head_start.claim(prepared.payload, Candidate(0, *_first_point(prepared)))
        assert first is not None and first.ok, first and first.error
    finally:
        prepared.close()
    assert not os.path.exists(prepared.payload.path)
    assert head_start.claim(prepared.payload, Candidate(1, *_first_point(prepared))) is None


def _first_point(prepared: head_start.Prepared) -> tuple[str, dict[str, object]]:
    from tasks.search.portfolio import initial_points

    family, point = initial_points(list(prepared.profile.families))[0]
    return family, dict(point)
