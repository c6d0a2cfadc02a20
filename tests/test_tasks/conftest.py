"""Fixtures the tests of several task modules share."""

from __future__ import annotations

import pytest
from support import load

from tasks.config import parse_config
from tasks.data.inspect import inspect_data


@pytest.fixture(scope="module")
def credit_profile():
    """credit_g (binary; categories, numbers and text) and its profile as a 3-fold run sees it."""
    frame = load("credit_g")
    config = parse_config(training_data="credit_g", target="class", n_cross_validations=3)
    profile = inspect_data(config, frame)
    return frame, profile
