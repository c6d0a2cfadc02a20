"""How much does stopping boosting on the rows that score it flatter it? The figures behind
TrialSettings.stop_share's default (None: the fold's validation rows), from the tables of
shared/datasets/meta/ (never the benchmark tables).

For each table: a seeded 80/20 split (each side capped at --max-rows, stratified); on the 80%,
the run's own validation (tasks.data.split: 5-fold CV below 20,000 rows) and the run's default
primary metric; each configuration evaluated as a trial is (tasks.search.evaluate), then refit
on all of the 80% as the flow refits (the folds' kept rounds averaged) and scored on the 20%.
Each booster twice: (a) stopping on the fold's validation rows, which also score it; (b)
stopping on a --share slice of the fold's fit rows (TrialSettings.stop_share).

Reported per variant: optimism (the CV score's advantage over the refit model's test score, in
the metric's units, positive: CV looked better); how often the best configuration by CV is not
the best by test, and what that costs on test; Caruana's ensemble of the six (the flow's
voting_ensemble): the weight it gives the boosters and its test score; the refit's test score
of (a) against (b).

    .venv/bin/python benchmarks/early_stopping.py [--datasets chile_vote,spam7] [--seed 0]
        [--max-rows 10000] [--share 0.1] [--xgboost default|portfolio] [--jsonl FILE]
    .venv/bin/python benchmarks/early_stopping.py --summarize FILE
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

# Run as a file (see above), so its folder is on sys.path, as for engineered.py's families.
from early_stopping_measure import BOOSTERS, META, REFERENCES, run_table

from tasks.models.boosting import STOP_SHARE


def _line(record: dict) -> str:
    cells = []
    for name in (*BOOSTERS, *REFERENCES):
        a, b = record["a"][name], record["b"][name]
        if name in BOOSTERS and a is not b and (a["cv"], a["test"]) != (b["cv"], b["test"]):
            cells.append(f"{name} {a['cv']:.4f}/{a['test']:.4f} -> {b['cv']:.4f}/{b['test']:.4f}")
        else:
            cells.append(f"{name} {a['cv']:.4f}/{a['test']:.4f}")
    return f"{record['table']:<18} " + "  ".join(cells)


def _optimism(record: dict, variant: str, name: str) -> float:
    s = record[variant][name]
    return (s["cv"] - s["test"]) * (1 if record["greater"] else -1)


def _better(record: dict, x: float, y: float) -> float:
    """How much x beats y in the record's metric (positive: better)."""
    return (x - y) * (1 if record["greater"] else -1)


def summary(records: list[dict]) -> str:
    lines = []
    names = (*BOOSTERS, *REFERENCES)
    for kind in ("binary", "multiclass", "regression"):
        chosen = [r for r in records if r["task"] == kind]
        if not chosen:
            continue
        lines += [f"\n### {kind} ({len(chosen)} tables, {chosen[0]['metric']})\n",
                  "| configuration | optimism (a) | optimism (b) | (a) - (b), paired "
                  "| tables (a) more optimistic | beyond the references' (a) / (b) "
                  "| refit test (b) - (a) | (b) better / worse on test | rounds (a) / (b) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        # The references' mean optimism on each table: what its test split alone explains.
        floor = [statistics.mean(_optimism(r, "a", n) for n in REFERENCES) for r in chosen]
        for name in names:
            oa = [_optimism(r, "a", name) for r in chosen]
            ob = [_optimism(r, "b", name) for r in chosen]
            ea = statistics.mean(o - f for o, f in zip(oa, floor, strict=True))
            eb = statistics.mean(o - f for o, f in zip(ob, floor, strict=True))
            if name in REFERENCES or oa == ob:
                lines.append(f"| {name} | {statistics.mean(oa):+.4f} | (same) | | | {ea:+.4f} "
                             "| | | |")
                continue
            gain = [_better(r, r["b"][name]["test"], r["a"][name]["test"]) for r in chosen]
            ra = [r["a"][name]["rounds"] or 0 for r in chosen]
            rb = [r["b"][name]["rounds"] or 0 for r in chosen]
            lines.append(
                f"| {name} | {statistics.mean(oa):+.4f} | {statistics.mean(ob):+.4f} "
                f"| {statistics.mean(x - y for x, y in zip(oa, ob, strict=True)):+.4f} "
                f"(median {statistics.median(x - y for x, y in zip(oa, ob, strict=True)):+.4f}) "
                f"| {sum(x > y for x, y in zip(oa, ob, strict=True))} of {len(chosen)} "
                f"| {ea:+.4f} / {eb:+.4f} "
                f"| {statistics.mean(gain):+.4f} "
                f"| {sum(g > 0 for g in gain)} / {sum(g < 0 for g in gain)} "
                f"| {statistics.mean(ra):.0f} / {statistics.mean(rb):.0f} |")
    lines += ["\n### Choices (all tables)\n",
              "| variant | best by CV is not best by test | test cost of the CV choice (mean, max)"
              " | CV choice a booster | ensemble: booster weight | ensemble optimism "
              "| ensemble test vs (a) |", "|---|---|---|---|---|---|---|"]
    for variant in ("a", "b"):
        miss, cost, boosted, weight, opt, vs = 0, [], 0, [], [], []
        for r in records:
            sign = 1 if r["greater"] else -1
            by_cv = max(names, key=lambda n: sign * r[variant][n]["cv"])
            by_test = max(names, key=lambda n: sign * r[variant][n]["test"])
            miss += by_cv != by_test
            boosted += by_cv in BOOSTERS
            cost.append(_better(r, r[variant][by_test]["test"], r[variant][by_cv]["test"]))
            e = r[variant]["ensemble"]
            weight.append(e["booster_weight"])
            opt.append((e["cv"] - e["test"]) * sign)
            vs.append(_better(r, e["test"], r["a"]["ensemble"]["test"]))
        lines.append(
            f"| ({variant}) | {miss} of {len(records)} | {statistics.mean(cost):.4f}, "
            f"{max(cost):.4f} | {boosted} of {len(records)} | {statistics.mean(weight):.2f} "
            f"| {statistics.mean(opt):+.4f} | {statistics.mean(vs):+.5f} "
            f"({sum(v > 0 for v in vs)} better, {sum(v < 0 for v in vs)} worse) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", help="comma-separated meta tables (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=10_000,
                        help="at most this many training rows (and test rows), stratified")
    parser.add_argument("--share", type=float, default=STOP_SHARE,
                        help="variant (b): the share of each fold's fit rows to stop on")
    parser.add_argument("--xgboost", choices=("default", "portfolio"), default="default",
                        help="XGBoost's configuration: its second default (the hand-written "
                        "portfolio's entry) or the current portfolio's first XGBoost entry")
    parser.add_argument("--jsonl", help="append each table's figures to this file")
    parser.add_argument("--summarize", help="only summarize the records of this JSONL file")
    args = parser.parse_args()
    if args.summarize:
        records = [json.loads(line) for line in Path(args.summarize).read_text().splitlines()]
        print(summary(records))
        return
    logging.getLogger("automl").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")
    manifest = {e["name"]: e for e in json.loads((META / "manifest.json").read_text())}
    names = args.datasets.split(",") if args.datasets else list(manifest)
    unknown = sorted(set(names) - set(manifest))
    if unknown:
        parser.error(f"unknown datasets {unknown}; the manifest has: {', '.join(manifest)}")
    started, records = time.perf_counter(), []
    for name in names:
        t0 = time.perf_counter()
        record = run_table(manifest[name], args.seed, args.max_rows, args.share, args.xgboost)
        if record is None:
            continue
        records.append(record)
        print(f"{_line(record)}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as out:
                out.write(json.dumps(record) + "\n")
    print(f"Seed {args.seed}, at most {args.max_rows:,} training rows, (b) stops on "
          f"{args.share:.0%} of each fold's fit rows. Optimism: the CV score's advantage over "
          f"the refit model's test score, in the metric's units (positive: CV looked better). "
          f"Total {time.perf_counter() - started:.0f} s.")
    print(summary(records))


if __name__ == "__main__":
    main()
