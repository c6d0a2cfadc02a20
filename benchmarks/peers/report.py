"""The benchmark's table: dataset x system (test metric and wall/budget), mean ranks, wins; and
for automl-flow its phases and the peak memory of each of its processes, by role.

A failed system ranks last on its dataset (as a missing result is worse than any result);
ties share the average rank.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from scipy.stats import rankdata

from benchmarks.peers.data import GREATER_IS_BETTER
from benchmarks.peers.process import API, OTHER, ROOT, WORKER

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmarks.peers.systems import Outcome

__all__ = ["ranks", "wins", "by_role", "rss_ratio", "phase_rows", "memory_rows", "markdown"]

OURS = "automl-flow"
REFERENCE = "autogluon"  # the peer whose memory ours is set against
# automl-flow's phases (benchmarks.peers.phases), in the order they happen, the steps between.
BEFORE_STEPS = (("startup_seconds", "start-up: spawn to first step"),
                ("first_trial_seconds", "spawn to first trial"))
AFTER_STEPS = (("between_steps_seconds", "between steps (Prefect, workers' start and stop)"),
               ("exit_seconds", "exit: flow run's end to process exit"))


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
    won = tied = lost = 0
    for row in _by_dataset(outcomes).values():
        if ours not in row or peer not in row:
            continue
        a, b = _sortable(row[ours]), _sortable(row[peer])
        won, tied, lost = ((won + 1, tied, lost) if a > b else (won, tied + 1, lost) if a == b
                           else (won, tied, lost + 1))
    return won, tied, lost


def by_role(processes: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{role: {count, max, sum (of the processes' peak RSS, MB), names}} of one tree."""
    out: dict[str, dict[str, Any]] = {}
    for p in processes:
        mine = out.setdefault(p["role"], {"count": 0, "max": 0.0, "sum": 0.0, "names": []})
        mine["count"] += 1
        mine["max"] = max(mine["max"], p["peak_rss_mb"])
        mine["sum"] += p["peak_rss_mb"]
        mine["names"].append(p["name"])
    return out


def rss_ratio(outcomes: Sequence[Outcome], system: str,
              reference: str = REFERENCE) -> dict[str, float]:
    """{dataset: system's tree peak RSS / the reference's} where both ran."""
    out = {}
    for dataset, row in _by_dataset(outcomes).items():
        if system in row and reference in row and row[reference].peak_rss_mb > 0:
            out[dataset] = row[system].peak_rss_mb / row[reference].peak_rss_mb
    return out


def phase_rows(outcomes: Sequence[Outcome]) -> list[tuple[str, float, float, str, int]]:
    """automl-flow's phases: (phase, median s, max s, dataset of the max, runs), from spawn to
    exit in order; a failed run counts in the rows it has a value for (its result, and so its
    steps' seconds, is missing; its start-up is not)."""
    runs = [o for o in outcomes if o.system == OURS
            and ("phase_seconds" in o.info or "startup_seconds" in o.info)]
    steps = list(dict.fromkeys(k for o in runs for k in o.info.get("phase_seconds", {})))
    wanted = [*((key, label, None) for key, label in BEFORE_STEPS),
              *((step, f"step: {step}", "phase_seconds") for step in steps),
              *((key, label, None) for key, label in AFTER_STEPS)]
    rows = []
    for key, label, within in wanted:
        values = {o.dataset: (o.info.get(within, {}) if within else o.info).get(key)
                  for o in runs}
        rows.append(_stat_row(label, values))
    rows.append(_stat_row("wall: spawn to exit", {o.dataset: o.wall_seconds for o in runs}))
    rows.append(_stat_row("the flow's own wall_seconds (budget clock)",
                          {o.dataset: o.info.get("wall_seconds") for o in runs}))
    return [r for r in rows if r[4]]


def _stat_row(label: str, values: dict[str, float | None]) -> tuple[str, float, float, str, int]:
    known = {d: v for d, v in values.items() if v is not None}
    if not known:
        return label, 0.0, 0.0, "", 0
    top = max(known, key=lambda d: known[d])
    return label, statistics.median(known.values()), known[top], top, len(known)


def memory_rows(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """One row per dataset automl-flow ran on: the tree's peaks, each role's, the reference's."""
    table = _by_dataset(outcomes)
    rows = []
    for dataset, row in table.items():
        ours = row.get(OURS)
        if ours is None:
            continue
        roles = by_role(ours.processes)
        reference = row.get(REFERENCE)
        empty = {"count": 0, "max": None, "sum": None, "names": []}
        workers, other = roles.get(WORKER, empty), roles.get(OTHER, empty)
        rows.append({
            "dataset": dataset, "tree": ours.peak_rss_mb, "pss": ours.peak_pss_mb,
            "flow": roles.get(ROOT, empty)["max"], "api": roles.get(API, empty)["max"],
            "workers": workers["count"], "worker_max": workers["max"],
            "worker_sum": workers["sum"], "others": other["count"], "other_sum": other["sum"],
            "other_names": other["names"],
            "reference": reference.peak_rss_mb if reference else None,
            "ratio": (ours.peak_rss_mb / reference.peak_rss_mb
                      if reference and reference.peak_rss_mb > 0 else None),
        })
    return rows


def markdown(outcomes: Sequence[Outcome], systems: list[str], header: list[str]) -> str:
    table = _by_dataset(outcomes)
    rank = ranks(outcomes)
    lines = [*header, "", "Test metric (wall time / budget); ROC AUC higher is better, log loss "
             "and RMSE lower; **bold** = best on the dataset.", ""]
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
              f"| median peak RSS MB | max RSS ratio vs {REFERENCE} | failures |",
              "|---|---|---|---|---|---|---|---|"]
    for s in systems:
        mine = [o for o in outcomes if o.system == s]
        if not mine:
            continue
        mean_rank = statistics.mean(rank[o.dataset][s] for o in mine)
        ratios = [o.wall_ratio for o in mine]
        memory = [o.peak_rss_mb for o in mine]
        vs = rss_ratio(outcomes, s) if s != REFERENCE else {}
        lines.append(f"| {s} | {mean_rank:.2f} | {statistics.mean(ratios):.2f} | {max(ratios):.2f} "
                     f"| {statistics.mean(memory):.0f} | {statistics.median(memory):.0f} "
                     f"| {_ratio(vs)} | {sum(o.value is None for o in mine)} |")
    if OURS in systems:
        lines += ["", f"{OURS} against each peer (wins / ties / losses):", ""]
        for peer in (s for s in systems if s != OURS):
            lines.append(f"- vs {peer}: {'/'.join(map(str, wins(outcomes, OURS, peer)))}")
    if OURS in systems:
        lines += _phase_table(outcomes) + _memory_table(outcomes, REFERENCE in systems)
    failed = [o for o in outcomes if o.value is None]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [f"- {o.system} on {o.dataset}: {o.failure}" for o in failed]
    return "\n".join(lines) + "\n"


def _ratio(by_dataset: dict[str, float]) -> str:
    if not by_dataset:
        return "-"
    top = max(by_dataset, key=lambda d: by_dataset[d])
    return f"{by_dataset[top]:.2f} ({top})"


def _phase_table(outcomes: Sequence[Outcome]) -> list[str]:
    rows = phase_rows(outcomes)
    if not rows:
        return []
    lines = ["", f"{OURS} phases (seconds, median over datasets, and the dataset with the max). "
             "Steps are the flow's own phase_seconds; start-up and the flow run's end are "
             "Prefect's records, the first trial Optuna's (benchmarks/peers/phases.py); a failed "
             "run counts where it has a value.", "",
             "| phase | median s | max s | dataset of the max | runs |", "|---|---|---|---|---|"]
    lines += [f"| {label} | {median:.1f} | {top:.1f} | {dataset} | {n} |"
              for label, median, top, dataset, n in rows]
    return lines


def _memory_table(outcomes: Sequence[Outcome], reference: bool) -> list[str]:
    rows = memory_rows(outcomes)
    if not any(r["flow"] is not None for r in rows):
        return []  # raw results from before the processes were kept
    columns = [("tree", "tree peak"), ("pss", "tree PSS peak"), ("flow", "flow (root)"),
               ("api", "API server"), ("workers", "workers"), ("worker_max", "worker max"),
               ("worker_sum", "workers sum"), ("other_sum", "other (sum)")]
    if reference:
        columns += [("reference", f"{REFERENCE} tree peak"), ("ratio", f"tree / {REFERENCE}")]
    lines = ["", f"{OURS} peak RSS by process (MB). Each process's own peak (a replaced worker is "
             "another process); the tree peak is the peak of their sum at one poll, so the "
             "columns do not add up to it. PSS splits shared pages between their processes.", "",
             "| dataset | " + " | ".join(label for _, label in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for r in rows:
        lines.append(f"| {r['dataset']} | " + " | ".join(_cell(k, r[k]) for k, _ in columns) + " |")
    medians = {}
    for key, _ in columns:
        known = [r[key] for r in rows if r[key] is not None]
        medians[key] = statistics.median(known) if known else None
    lines.append("| median | " + " | ".join(_cell(k, medians[k]) for k, _ in columns) + " |")
    names = sorted({n for r in rows for n in r["other_names"]})
    if names:
        lines += ["", "Other processes: " + ", ".join(f"`{n}`" for n in names) + "."]
    monitored = [o for o in outcomes if o.system == OURS and "monitor" in o.info]
    if monitored:
        cpu = sum(o.info["monitor"]["pss_seconds"] for o in monitored)
        wall = sum(o.wall_seconds for o in monitored)
        every = max(o.info["monitor"]["pss_every"] for o in monitored)
        lines += ["", f"Reading PSS cost the monitor {cpu:.1f} CPU s over {wall:.0f} s of "
                  f"{OURS}'s runs ({100 * cpu / max(wall, 1e-9):.1f}% of a core; read every "
                  f"{'poll' if every == 1 else f'{every}th poll at the most'})."]
    return lines


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    if key == "ratio":
        return f"{value:.2f}"
    if key == "workers":
        return f"{value:g}"
    return f"{value:.0f}"
