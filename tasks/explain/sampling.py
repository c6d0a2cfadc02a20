"""Sampled Shapley contributions of any model on the raw columns (antithetic permutations
against background rows), for models no exact method covers.

The same estimator as shap's Permutation explainer, written here over the user's raw columns so
that categories and text are swapped as whole values (no encoded group to split) and every row's
hybrids go through the model in one predict call. Additive by construction: along one
permutation the steps telescope from f(background row) to f(row)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Callable

    from tasks.types import Array

__all__ = ["sampled_contributions", "affordable", "permutations", "BACKGROUND_ROWS"]

BACKGROUND_ROWS = 10
# Antithetic pairs (a permutation and its reverse) per row: as many as a budget of hybrid rows
# allows, so few rows get precise values and 1,000 rows still take seconds. On credit_g's
# forest against its exact tree SHAP, 2 permutations left a relative RMS error of 0.48, 10 of
# 0.33 (the rest is the background: 0.19 with 100 rows at 30 times the cost).
MIN_PERMUTATIONS, MAX_PERMUTATIONS = 2, 10
HYBRID_BUDGET = 420_000  # 1,000 rows x 20 columns at the minimum
_HYBRIDS_PER_CALL = 200_000
# A slow model (a kernel SVM or a network among an ensemble's members) predicts a few thousand
# rows a second, so the budget above would take minutes: the hybrids are cut to what it predicts
# in about this long, first in permutations (down to 2), then in background rows (down to 2).
TARGET_SECONDS = 20.0
MIN_BACKGROUND = 2
_PROBE_ROWS = 1000


def sampled_contributions(
    f: Callable[[pd.DataFrame], Array], frame: pd.DataFrame, columns: list[str],
    background: pd.DataFrame, targets: Array, seed: int = 0, seconds: float | None = None,
    rate: float | None = None,
) -> tuple[Array, Array]:
    """(contributions: rows x columns, base value per row) of f's output column `targets[i]`
    for row i; f maps raw rows to outputs (rows x k), `rate` rows a second (measured when not
    given)."""
    rng = np.random.default_rng(seed)
    rows = frame[columns].reset_index(drop=True)
    bg = background[columns].reset_index(drop=True)
    if len(bg) > BACKGROUND_ROWS:
        bg = bg.iloc[np.sort(rng.choice(len(bg), BACKGROUND_ROWS, replace=False))]
        bg = bg.reset_index(drop=True)
    n, m = len(rows), len(columns)
    b, p = affordable(rate or _rate(f, bg), n, m, len(bg), seconds or TARGET_SECONDS)
    bg = bg.iloc[:b]
    source = pd.concat([rows, bg], ignore_index=True)
    per_row = b * p * (m + 1)
    block = max(1, _HYBRIDS_PER_CALL // per_row)
    values, base = np.zeros((n, m)), np.zeros(n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        v, b0 = _block(f, source, np.arange(start, stop), (n, b, m, p), rng, targets[start:stop])
        values[start:stop], base[start:stop] = v, b0
    return values, base


def _rate(f: Callable[[pd.DataFrame], Array], bg: pd.DataFrame) -> float:
    """Rows the model predicts per second, on background rows repeated."""
    probe = bg.iloc[np.arange(_PROBE_ROWS) % len(bg)].reset_index(drop=True)
    started = time.perf_counter()
    f(probe)
    return _PROBE_ROWS / max(time.perf_counter() - started, 1e-6)


def affordable(rate: float, n: int, m: int, b: int,
               seconds: float = TARGET_SECONDS) -> tuple[int, int]:
    """(background rows, permutations) for n rows of m columns: permutations(n, m, b), fewer
    when the model predicting `rate` rows a second would take over `seconds`."""
    p = permutations(n, m, b)
    allowed = rate * seconds
    while n * b * p * (m + 1) > allowed and p > MIN_PERMUTATIONS:
        p -= 2
    while n * b * p * (m + 1) > allowed and b > min(MIN_BACKGROUND, b):
        b -= 1
    return b, p


def permutations(n: int, m: int, b: int) -> int:
    """Permutations per row (even: antithetic pairs) for n rows of m columns, b background."""
    fits = HYBRID_BUDGET // max(1, n * b * (m + 1))
    return int(np.clip(fits - fits % 2, MIN_PERMUTATIONS, MAX_PERMUTATIONS))


def _block(
    f: Callable[[pd.DataFrame], Array], source: pd.DataFrame, rows: Array,
    sizes: tuple[int, int, int, int], rng: np.random.Generator, targets: Array,
) -> tuple[Array, Array]:
    n, b, m, p = sizes
    r = len(rows)
    orders = np.empty((r, p, m), dtype=int)
    for i in range(r):
        for k in range(0, p, 2):
            orders[i, k] = rng.permutation(m)
            if k + 1 < p:
                orders[i, k + 1] = orders[i, k][::-1]
    rank = np.argsort(orders, axis=2)  # rank[i, p, j]: when column j switches to the row's value
    steps = np.arange(m + 1)
    # take[i, bg, p, step, j]: column j from the row (after `step` switches) or the background.
    take = rank[:, None, :, None, :] < steps[None, None, None, :, None]
    take = np.broadcast_to(take, (r, b, p, m + 1, m))
    from_row = np.broadcast_to(rows[:, None, None, None], (r, b, p, m + 1)).ravel()
    from_bg = np.broadcast_to((n + np.arange(b))[None, :, None, None], (r, b, p, m + 1)).ravel()
    flat = take.reshape(-1, m)
    hybrid = pd.DataFrame({
        column: source[column].iloc[np.where(flat[:, j], from_row, from_bg)].to_numpy()
        for j, column in enumerate(source.columns)
    })
    hybrid = hybrid.astype(source.dtypes.to_dict())
    out = np.asarray(f(hybrid), dtype=float)
    out = out.reshape(r, b, p, m + 1, -1)[np.arange(r), ..., targets]  # (r, b, p, m + 1)
    gains = np.diff(out, axis=3)  # gains[..., s]: the s-th switched column's effect
    switched = np.take_along_axis(gains, rank[:, None, :, :], axis=3)  # back to column order
    return switched.mean(axis=(1, 2)), out[..., 0].mean(axis=(1, 2))
