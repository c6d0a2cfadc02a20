"""A slow model's sampled explanation is cut to about TARGET_SECONDS of its predictions: fewer
permutations first, then fewer background rows; a fast model keeps the full budget."""

from __future__ import annotations

from tasks.explain.sampling import (
    MAX_PERMUTATIONS,
    MIN_PERMUTATIONS,
    TARGET_SECONDS,
    affordable,
    permutations,
)


def _hybrids(n: int, m: int, b: int, p: int) -> int:
    return n * b * p * (m + 1)


def test_a_fast_model_keeps_the_budget_of_hybrid_rows():
    assert affordable(10**9, 200, 20, 10) == (10, permutations(200, 20, 10))
    assert affordable(10**9, 50, 20, 10) == (10, MAX_PERMUTATIONS)


def test_a_slow_model_loses_permutations_before_background_rows():
    rate = 20_000  # rows a second: 400,000 in the target time
    b, p = affordable(rate, 200, 20, 10)
    assert b == 10 and MIN_PERMUTATIONS <= p < permutations(200, 20, 10)
    assert _hybrids(200, 20, b, p) <= rate * TARGET_SECONDS


def test_a_very_slow_model_on_many_rows_keeps_two_background_rows_at_least():
    rate = 4_500  # a seven-member ensemble with a kernel SVM on credit_g, 2 busy cores
    b, p = affordable(rate, 1000, 20, 10)
    assert p == MIN_PERMUTATIONS and b < 10
    assert _hybrids(1000, 20, b, p) <= rate * TARGET_SECONDS
    assert affordable(1.0, 1000, 20, 10) == (2, MIN_PERMUTATIONS)  # never below the minimums
