"""Learn search_spaces/portfolio.yaml on the meta tables (AutoGluon zeroshot / FLAML zero-shot).

1. A pool of candidates: every searched family's YAML defaults, today's portfolio entries, and
   --samples points drawn from each family's space by Optuna's scrambled Sobol sampler (seeded).
2. Each candidate on each table of shared/datasets/meta/ (never the benchmark tables) as a run's
   trial: the run's default metric, its early stopping and boosting clock (--fit-seconds), one
   thread, on one seeded 75/25 holdout of at most --max-rows training rows. Every (candidate,
   table) is appended to --cache as it finishes, so a rerun resumes.
3. Scores normalised per table (best candidate 1, the pool's median 0, clipped); entries picked
   greedily by the mean over tables of the best normalised score so far gained per unit of cost
   to a power (cost: a trial's CPU seconds over the table's median trial), HistGradientBoosting's
   defaults forced among the first two.
4. Leave-tables-out check (pick on half the tables, score on the other half, against today's
   portfolio); with --write, search_spaces/portfolio.yaml and the results file are rewritten.

    .venv/bin/python -m benchmarks.portfolio [--samples 6] [--max-rows 5000] [--entries 14]
        [--tables a,b] [--write]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.families import read_manifest
from benchmarks.portfolio_evaluate import META, ROOT, evaluate
from benchmarks.portfolio_pool import (
    BASELINE,
    Candidate,
    candidate_pool,
    first_default,
    hand_written,
)
from benchmarks.portfolio_report import results_markdown, write_portfolio
from benchmarks.portfolio_select import (
    COST_POWER,
    OVERHEAD_SECONDS,
    anytime,
    greedy,
    leave_tables_out,
    matrices,
)

CACHE = ROOT.parent / "scratch" / "portfolio"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6, help="points drawn per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=5_000, help="training rows per table")
    parser.add_argument("--fit-seconds", type=float, default=20.0,
                        help="the boosting clock of one fit (TrialSettings.fit_seconds)")
    parser.add_argument("--entries", type=int, default=14, help="length of the portfolio")
    parser.add_argument("--repeats", type=int, default=25, help="random halvings of the tables")
    parser.add_argument("--tables", help="comma-separated meta tables (default: all)")
    parser.add_argument("--cache", type=Path, help="JSON lines of finished (candidate, table)")
    parser.add_argument("--write", action="store_true",
                        help="rewrite search_spaces/portfolio.yaml and the results file")
    parser.add_argument("--note", default="", help="a paragraph added to the results file")
    parser.add_argument("--results", type=Path,
                        default=ROOT / "benchmarks" / "results" / "2026-12-06-portfolio.md")
    args = parser.parse_args()
    logging.getLogger("automl").setLevel(logging.WARNING)
    warnings.simplefilter("ignore")  # convergence chatter; failures are records
    manifest = read_manifest(META, args.tables, parser.error, "tables")
    cache = args.cache or CACHE / (f"scores-rows{args.max_rows}-fit{args.fit_seconds:g}"
                                   f"-seed{args.seed}.jsonl")
    pool = candidate_pool(args.samples, args.seed)
    print(f"{len(pool)} candidates on {len(manifest)} tables; cache {cache}", flush=True)
    started = time.process_time()
    records = evaluate(pool, manifest, cache, max_rows=args.max_rows,
                       fit_seconds=args.fit_seconds, seed=args.seed)
    print(f"evaluated in {time.process_time() - started:.0f} s of CPU", flush=True)

    scores = matrices(pool, records)
    norm, cost = scores.norm, scores.cost
    keys = [c.key for c in pool]
    forced = keys.index(Candidate(BASELINE, first_default(BASELINE), "default").key)
    order = greedy(norm, cost, args.entries, forced=forced)
    today = [keys.index(c.key) for c in hand_written()]
    # Up to the hand-written list's length; budgets in the table's median trials.
    trials, budgets = (1, 2, 3, 5, 8, len(today)), (1.0, 2.0, 5.0, 10.0, 20.0)
    tasks = {e["name"]: e["task"] for e in manifest}
    cvs = {power: leave_tables_out(norm, cost, [tasks[t] for t in scores.tables], today,
                                   size=args.entries, forced=forced, repeats=args.repeats,
                                   seed=args.seed, trials=trials, budgets=budgets, power=power)
           for power in sorted({0.0, COST_POWER, 1.0})}
    full = {name: anytime(o, norm, cost, trials, budgets)
            for name, o in (("learned", order), ("today", today))}
    minutes = float(scores.seconds.sum()) / 60
    # The clock is wall time, as in a run: on a busy machine it cuts fits shorter.
    clocked = int((scores.fits >= 0.95 * args.fit_seconds).sum())
    setup = (f"{len(pool)} candidates ({args.samples} drawn per family, seed {args.seed}) on "
             f"{len(scores.tables)} meta tables; each a trial as a run makes it: the default "
             f"metric (AUC_weighted, normalized_root_mean_squared_error), early stopping and a "
             f"{args.fit_seconds:g} s boosting clock, one thread, on a seeded 75/25 holdout of "
             f"at most {args.max_rows:,} training rows. {minutes:.0f} minutes of CPU in trials; "
             f"{clocked} of {int(scores.applies.sum())} trials ran into the boosting clock. "
             f"Costs count {OVERHEAD_SECONDS} s of overhead per trial. HistGradientBoosting's "
             f"defaults alone: mean normalised score {np.nanmean(norm[forced]):.3f}.")
    command = (f".venv/bin/python -m benchmarks.portfolio --samples {args.samples} --seed "
               f"{args.seed} --max-rows {args.max_rows} --fit-seconds {args.fit_seconds:g} "
               f"--entries {args.entries} --repeats {args.repeats} --write")
    text = results_markdown(scores, order, cvs, full, f"{setup} {args.note}".strip(), command)
    print(text)
    if args.write:
        write_portfolio(scores, order, minutes, args.max_rows, args.results)
        args.results.write_text(text)



if __name__ == "__main__":
    main()
