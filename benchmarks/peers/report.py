"""The benchmark's table: dataset x system (test metric and wall/budget), mean ranks, wins.

A failed system ranks last on its dataset (as a missing result is worse than any result);
ties share the average rank.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from scipy.stats import rankdata

from benchmarks.peers.data import GREATER_IS_BETTER
from benchmarks.peers.systems import Outcome

__all__ = ["ranks", "wins", "markdown"]

OURS = "automl-flow"


def _by_dataset(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Outcome]]:
    table: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        table.setdefault(o.dataset, {})[o.system] = o
    return table


def _sortable(o: Outcome) -> float:
    """Higher is better, failures worst."""
    if o.value is None:
        return float("-inf")
    return o.value if GREATER_IS_BETTER[o.metric] else -o.value


def ranks(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """{dataset: {system: rank}}, 1 = best."""
    out = {}
    for dataset, row in _by_dataset(outcomes).items():
        systems = list(row)
        values = rankdata([-_sortable(row[s]) for s in systems], method="average")
        out[dataset] = dict(zip(systems, (float(v) for v in values), strict=True))
    return out


def wins(outcomes: Sequence[Outcome], ours: str, peer: str) -> tuple[int, int, int]:
    """(wins, ties, losses) of `ours` against `peer` over the datasets both were run on."""
    w = t = l = 0
    for row in _by_dataset(outcomes).values():
        if ours not in row or peer not in row:
            continue
        a, b = _sortable(row[ours]), _sortable(row[peer])
        w, t, l = (w + 1, t, l) if a > b else (w, t + 1, l) if a == b else (w, t, l + 1)
    return w, t, l


def markdown(outcomes: Sequence[Outcome], systems: list[str], header: list[str]) -> str:
    table = _by_dataset(outcomes)
    rank = ranks(outcomes)
    lines = [*header, "", "Test metric (wall time / budget); ROC AUC higher is better, log loss and "
             "RMSE lower; **bold** = best on the dataset.", ""]
    lines.append("| dataset | metric | " + " | ".join(systems) + " |")
    lines.append("|---|---|" + "---|" * len(systems))
    for dataset, row in table.items():
        metric = next(iter(row.values())).metric
        cells = []
        for s in systems:
            o = row.get(s)
            if o is None:
                cells.append("not run")
            elif o.value is None:
                cells.append(f"FAILED ({o.wall_ratio:.2f}x)")
            else:
                text = f"{o.value:.4g}"
                cells.append(f"{'**' + text + '**' if rank[dataset][s] == 1 else text} "
                             f"({o.wall_ratio:.2f}x)")
        lines.append(f"| {dataset} | {metric} | " + " | ".join(cells) + " |")
    lines += ["", "| system | mean rank | mean wall/budget | max wall/budget | mean peak RSS MB "
              "| failures |", "|---|---|---|---|---|---|"]
    for s in systems:
        mine = [o for o in outcomes if o.system == s]
        if not mine:
            continue
        mean_rank = statistics.mean(rank[o.dataset][s] for o in mine)
        ratios = [o.wall_ratio for o in mine]
        lines.append(f"| {s} | {mean_rank:.2f} | {statistics.mean(ratios):.2f} | {max(ratios):.2f} "
                     f"| {statistics.mean(o.peak_rss_mb for o in mine):.0f} "
                     f"| {sum(o.value is None for o in mine)} |")
    if OURS in systems:
        lines += ["", f"{OURS} against each peer (wins / ties / losses):", ""]
        for peer in (s for s in systems if s != OURS):
            lines.append(f"- vs {peer}: {'/'.join(map(str, wins(outcomes, OURS, peer)))}")
    failed = [o for o in outcomes if o.value is None]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [f"- {o.system} on {o.dataset}: {o.failure}" for o in failed]
    return "\n".join(lines) + "\n"
