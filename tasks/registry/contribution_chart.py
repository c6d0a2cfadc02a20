"""The final model's per-row contributions across held-out rows (issue 19), as one chart: a strip
per raw column, each explained row a dot at its contribution, coloured by the row's value of the
column (its rank among the rows, when numeric), the columns ordered by their mean |contribution|.

Explaining costs what the method costs, and neither kind is cheap everywhere: a sampled
explanation runs (columns + 1) x 10 background rows x up to 10 permutations model rows per
explained row, and tree SHAP of a deep forest costs about as much per row. So PROBE_ROWS rows
are explained first and timed, and the rest of the ROWS only as far as that rate fits the aim
(the probe's rows are the chart when no more fit). Nothing starts that one model call's rate
says could not fit the limit: the chart is given up with the reason instead.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from tasks.explain import explain
from tasks.explain.sampling import BACKGROUND_ROWS, permutations
from tasks.features.preprocess import required_columns
from tasks.registry.model_charts import plt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tasks.explain import Explanation
    from tasks.final.evaluation import HeldOutPredictions
    from tasks.types import Array, Estimator, Json

__all__ = ["ContributionSummary", "contribution_chart", "ROWS", "PROBE_ROWS", "SHOWN"]

ROWS = 200  # held-out rows explained at most
PROBE_ROWS = 20  # explained first, timed; the least the chart shows
SHOWN = 15  # columns drawn, the strongest


@dataclass(frozen=True)
class ContributionSummary:
    """What contributions.json holds: the mean |contribution| of every raw column the model
    reads, largest first, in the units of the output explained."""

    explained_output: str  # e.g. "margin (log-odds) of 'good'", "prediction"
    method: str
    basis: str  # "test" or "validation" rows
    rows: int
    seconds: float
    mean_abs_contribution: dict[str, float]

    def to_dict(self) -> Json:
        return asdict(self)


def contribution_chart(held: HeldOutPredictions, model: Estimator, seed: int, aim: float,
                       limit: float = float("inf")) -> tuple[Figure, ContributionSummary]:
    """Up to ROWS held-out rows explained in about `aim` seconds in all (PROBE_ROWS at least);
    given up, with the reason, when even those could take longer than `limit`."""
    started = time.perf_counter()
    rows = _rows(held, seed)
    columns = [str(c) for c in required_columns(model)]
    if not columns:
        raise ValueError("the model names no raw input column to explain")
    probe = rows.iloc[:PROBE_ROWS]
    per_row = _predict_seconds(model, probe)
    rate = 1 / max(per_row, 1e-9)  # given to both explanations: they need not probe again
    worst = per_row * _sampled_size(len(probe), len(columns))
    if worst > limit:
        raise TimeoutError(f"explaining {len(probe)} rows could take about {worst:.0f} s (if "
                           f"sampled), more than the {limit:.1f} s the time budget leaves it")
    # A sampled explanation's plan fits the aim: fewer permutations and background rows, a
    # coarser estimate, which a summary across rows can take.
    explained = explain(model, probe, seed=seed, seconds=aim, rate=rate)
    spent = time.perf_counter() - started
    n = _affordable(explained, len(rows), len(columns), aim - spent, limit - spent)
    if n > len(probe):
        explained = explain(model, rows.iloc[:n], seed=seed, seconds=max(0.5, aim - spent),
                            rate=rate)
    shown = rows.iloc[:len(explained.contributions)]
    means = explained.contributions.abs().mean().sort_values(ascending=False)
    summary = ContributionSummary(explained.output_name, explained.method, held.basis,
                                  len(shown), round(time.perf_counter() - started, 3),
                                  {str(k): float(v) for k, v in means.items()})
    return _strips(explained, shown, means), summary


def _rows(held: HeldOutPredictions, seed: int) -> pd.DataFrame:
    """Up to ROWS held-out rows, drawn with the seed, in their own order."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.permutation(len(held.X))[:ROWS])
    return held.X.iloc[picked].reset_index(drop=True)


def _sampled_size(n: int, m: int) -> int:
    """Model rows a sampled explanation of n rows of m columns predicts."""
    b = min(BACKGROUND_ROWS, n)
    return n * b * permutations(n, m, b) * (m + 1)


def _predict_seconds(model: Estimator, rows: pd.DataFrame) -> float:
    """Seconds per row of one model call (the many rows of a sampled explanation are sent in a
    few calls: a call's fixed cost is spread over them)."""
    big = pd.concat([rows] * max(1, 1_000 // max(1, len(rows))), ignore_index=True)
    began = time.perf_counter()
    predict = getattr(model, "predict_proba", None) or model.predict
    predict(big)
    return (time.perf_counter() - began) / len(big)


def _affordable(probe: Explanation, available: int, m: int, aim: float, limit: float) -> int:
    """Rows whose explanation, at the probe's rate, fits both the aim and the limit."""
    done = len(probe.contributions)
    per_row = probe.seconds / max(1, done)

    def cost(n: int) -> float:
        if probe.method != "sampled":
            return per_row * n
        # Permutations per row fall as rows grow (tasks.explain.sampling's hybrid budget).
        b = BACKGROUND_ROWS
        return per_row * n * permutations(n, m, b) / permutations(done, m, b)

    n = available
    while n > done and cost(n) > min(aim, limit):
        n = int(n * 0.9)
    # Too few more to be worth explaining the probe's rows again.
    return n if n >= 1.5 * done else done


def _strips(explained: Explanation, rows: pd.DataFrame, means: pd.Series) -> Figure:
    """The SHOWN strongest columns, strongest on top: a beeswarm-like strip each."""
    top = list(means.index[:SHOWN])
    figure, axes = plt.subplots(figsize=(8.0, 1.4 + 0.42 * len(top)))
    cmap = plt.get_cmap("coolwarm")
    for y, column in enumerate(reversed(top)):
        x = explained.contributions[column].to_numpy(dtype=float)
        colour = _value_rank(rows[column])
        offsets = _swarm(x)
        numeric = ~np.isnan(colour)
        axes.scatter(x[~numeric], y + offsets[~numeric], s=9, color="0.6", alpha=0.7,
                     linewidths=0)
        axes.scatter(x[numeric], y + offsets[numeric], s=9, c=colour[numeric], cmap=cmap,
                     vmin=0.0, vmax=1.0, alpha=0.85, linewidths=0)
    axes.axvline(0, color="grey", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(top)), list(reversed(top)))
    axes.set_ylim(-0.6, len(top) - 0.4)
    axes.set_xlabel(f"Contribution to the {explained.output_name} ({len(rows)} rows, "
                    f"{explained.method})\ncolour: the row's value of the column, low (blue) to "
                    "high (red); grey: a category or missing")
    bar = figure.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap), ax=axes,
                          ticks=[0, 1], pad=0.01, fraction=0.03, shrink=0.6)
    bar.ax.set_yticklabels(["low", "high"])
    return figure


def _value_rank(values: pd.Series) -> Array:
    """Each row's rank in [0, 1] among the rows, NaN for categories and missing values."""
    if not pd.api.types.is_numeric_dtype(values):
        return np.full(len(values), np.nan)
    ranked = values.astype(float).rank(pct=True).to_numpy(dtype=float)
    known = ranked[~np.isnan(ranked)]
    if len(known) == 0 or known.max() == known.min():
        return np.where(np.isnan(ranked), np.nan, 0.5)
    scaled: Array = (ranked - known.min()) / (known.max() - known.min())
    return scaled


def _swarm(x: Array, width: float = 0.38, bins: int = 80) -> Array:
    """Vertical offsets that spread dots with close contributions apart, alternating up and down
    from the strip's line, as shap's beeswarm does."""
    span = float(np.ptp(x)) if len(x) else 0.0
    slots = np.round((x - (x.min() if len(x) else 0.0)) / (span or 1.0) * bins).astype(int)
    offsets = np.zeros(len(x))
    for slot in np.unique(slots):
        members = np.flatnonzero(slots == slot)
        k = np.arange(len(members))
        offsets[members] = (k + 1) // 2 * np.where(k % 2 == 1, 1.0, -1.0)
    peak = np.abs(offsets).max(initial=0.0)
    return offsets * (width / peak) if peak > 0 else offsets
