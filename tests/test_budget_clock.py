"""The budget's clock: the command line's start-up counts against experiment_timeout_minutes."""

from __future__ import annotations

import time

import pytest

from flows.automl import MAX_STARTUP_FRACTION, _clock_start
from flows.cli import SHUTDOWN_SECONDS
from flows.run import Budget


def test_without_a_start_time_the_clock_starts_now():
    assert _clock_start(None, 1.0) == pytest.approx(time.monotonic(), abs=0.05)


def test_the_time_since_the_command_started_is_counted():
    started = _clock_start(time.time() - 12.0, 1.0)
    assert time.monotonic() - started == pytest.approx(12.0, abs=0.1)


def test_start_up_counts_at_most_half_the_budget():
    # A budget shorter than the start-up still leaves time for the first trials.
    started = _clock_start(time.time() - 100.0, 1.0)
    assert time.monotonic() - started == pytest.approx(MAX_STARTUP_FRACTION * 60, abs=0.1)


def test_a_start_time_in_the_future_counts_nothing():
    assert _clock_start(time.time() + 50.0, 1.0) == pytest.approx(time.monotonic(), abs=0.05)


def test_the_shutdown_allowance_ends_the_flow_s_budget_early():
    budget = Budget(1.0, started=100.0, shutdown=SHUTDOWN_SECONDS)
    assert budget.end == 160.0 - SHUTDOWN_SECONDS < Budget(1.0, started=100.0).end
