"""tasks.models.boosting: the slice of fit rows a booster may stop on; the clock that stops it."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.models.boosting import STOP_MIN_ROWS, _Clock, early_stopping, stopping_split


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


class _AfterRounds(_Clock):
    """The boosting clock, run out after a count of rounds instead of seconds: deterministic."""

    def __init__(self, rounds: int, stopper: object) -> None:
        super().__init__(0.0, stopper)
        self.rounds, self.calls = rounds, 0

    def _over(self) -> bool:
        self.calls += 1
        return self.calls > self.rounds


def test_lightgbm_stopped_by_its_clock_keeps_its_best_round():
    from lightgbm import LGBMRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = X[:, 0] + rng.normal(scale=1.0, size=600)
    model = LGBMRegressor(n_estimators=5000, learning_rate=0.8, num_leaves=31, verbose=-1)
    fit_args = early_stopping(model, X[400:], y[400:])  # 50 rounds of patience: never reached
    stopper = fit_args["callbacks"][0]
    clock = _AfterRounds(40, stopper)
    model.fit(X[:400], y[:400], **{**fit_args, "callbacks": [*fit_args["callbacks"], clock]})
    # At this learning rate the validation loss bottoms out within a few rounds; the clock ran
    # out after 40, and the model keeps the best of them, as early stopping would.
    assert clock.calls == 41
    assert model.best_iteration_ == stopper.best_iter[0] + 1 < 40
    assert model.booster_.current_iteration() == model.best_iteration_
