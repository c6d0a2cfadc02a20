"""tasks.models.boosting.stopping_split: the slice of a fold's fit rows a booster stops on."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.models.boosting import STOP_MIN_ROWS, stopping_split


def _labels(counts: dict[str, int], seed: int = 0) -> np.ndarray:
    y = np.concatenate([[label] * n for label, n in counts.items()]).astype(object)
    return np.random.default_rng(seed).permutation(y)


def test_the_slices_partition_the_rows_and_keep_the_class_shares():
    y = _labels({"a": 700, "b": 250, "c": 50})
    fit, stop = stopping_split(y, 0.1, seed=0, classify=True)
    assert np.intersect1d(fit, stop).size == 0
    assert np.array_equal(np.union1d(fit, stop), np.arange(len(y)))
    assert len(stop) == 100
    shares = {label: np.mean(y[stop] == label) for label in "abc"}
    assert shares == pytest.approx({"a": 0.70, "b": 0.25, "c": 0.05}, abs=0.011)


def test_small_folds_stop_on_the_minimum_but_fit_on_most_rows():
    values = np.linspace(0.0, 1.0, 300)
    fit, stop = stopping_split(values, 0.1, seed=0, classify=False)
    assert len(stop) == STOP_MIN_ROWS and len(fit) == 300 - STOP_MIN_ROWS
    tiny_fit, tiny_stop = stopping_split(values[:80], 0.1, seed=0, classify=False)
    assert len(tiny_stop) == 20 and len(tiny_fit) == 60  # a quarter at most


def test_a_class_seen_once_is_always_fitted_on():
    y = _labels({"a": 400, "b": 200, "lonely": 1})
    lonely = int(np.flatnonzero(y == "lonely")[0])
    for seed in range(10):
        fit, stop = stopping_split(y, 0.1, seed=seed, classify=True)
        assert lonely in fit and lonely not in stop
        assert set(y[stop]) == {"a", "b"}


def test_the_same_seed_gives_the_same_rows_and_another_seed_others():
    y = _labels({"a": 500, "b": 500})
    first, again = (stopping_split(y, 0.1, seed=3, classify=True)[1] for _ in range(2))
    other = stopping_split(y, 0.1, seed=4, classify=True)[1]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
