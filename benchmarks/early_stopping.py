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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.errors import AutoMLError
from tasks.final.choice import Choice
from tasks.final.ensemble import voting_ensemble
from tasks.final.refit import refit_model
from tasks.metrics import default_metric, early_stopping_watch, score_all
from tasks.models.boosting import STOP_SHARE, always_stops
from tasks.models.pipeline import build_pipeline
from tasks.models.predict import predict_scores
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.portfolio import load_portfolio
from tasks.search.spaces import load_space

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"
TASKS = {"binary": "classification", "multiclass": "classification", "regression": "regression"}
BOOSTERS = ("LightGBM", "CatBoost", "XGBoost")
REFERENCES = ("RandomForest", "ExtraTrees", "HistGB")


def configurations(xgboost: str = "default") -> dict[str, tuple[str, dict]]:
    """Name -> (family, parameters): LightGBM's and CatBoost's first defaults; XGBoost's second
    default (the hand-written portfolio's XGBoost entry, seed 0's) or with "portfolio" the first
    XGBoost entry of today's portfolio (the learned one, seed 1's); the non-boosting references'
    first defaults."""
    first = {k: dict(load_space(k).defaults[0]) for k in
             ("lightgbm", "catboost", "random_forest", "extra_trees", "gradient_boosting")}
    xgb = (dict(next(p for f, p in load_portfolio() if f == "xgboost")) if xgboost == "portfolio"
           else dict(load_space("xgboost").defaults[1]))
    return {"LightGBM": ("lightgbm", first["lightgbm"]),
            "CatBoost": ("catboost", first["catboost"]),
            "XGBoost": ("xgboost", xgb),
            "RandomForest": ("random_forest", first["random_forest"]),
            "ExtraTrees": ("extra_trees", first["extra_trees"]),
            "HistGB": ("gradient_boosting", first["gradient_boosting"])}


@dataclass
class Scored:
    cv: float
    test: float
    rounds: int | None  # the refit's rounds (boosters that stopped early)
    seconds: float
    result: object  # the TrialResult, for the ensemble
    test_pred: np.ndarray


def _capped(frame: pd.DataFrame, target: str, classify: bool, rows: int, seed: int
            ) -> pd.DataFrame:
    if len(frame) <= rows:
        return frame.reset_index(drop=True)
    y = frame[target]
    stratify = y if classify and y.value_counts().min() >= 2 else None
    kept, _ = train_test_split(frame, train_size=rows, stratify=stratify, random_state=seed)
    return kept.reset_index(drop=True)


def run_table(entry: dict, seed: int, max_rows: int, share: float, xgboost: str = "default"
              ) -> dict | None:
    task = TASKS[entry["task"]]
    classify = task == "classification"
    target = entry["target"]
    frame = pd.read_parquet(META / entry["file"])
    frame = frame[frame[target].notna()]
    counts = frame[target].value_counts()
    train, test = train_test_split(frame, test_size=0.2, random_state=seed,
                                   stratify=frame[target] if classify and counts.min() >= 2
                                   else None)
    train = _capped(train, target, classify, max_rows, seed)
    test = _capped(test, target, classify, max_rows, seed)
    config = parse_config(training_data=entry["name"], target=target, task=task,
                          primary_metric=default_metric(task), random_state=seed)
    try:
        profile = inspect_data(config, train)
    except AutoMLError as exc:
        print(f"{entry['name']}: refused: {exc}", file=sys.stderr)
        return None
    data, _ = split_data(SplitPlan.of(config), profile, train)
    metric = profile.metric
    n_classes = None if data.classes is None else len(data.classes)
    watch = early_stopping_watch(metric, n_classes)
    today = TrialSettings(profile.roles, seed=seed, n_jobs=1, early_stopping=watch,
                          metric=metric.name, stop_share=None)
    variants = {"a": today, "b": replace(today, stop_share=share)}
    y_test = test[target].to_numpy()
    if data.classes is not None:
        y_test = np.searchsorted(data.classes, y_test)
    X_test = test.drop(columns=[target])

    def scored(name: str, family: str, params: dict, settings: TrialSettings) -> Scored:
        started = time.perf_counter()
        result = evaluate_candidate(Candidate(0, family, params), data, settings)
        if not result.ok:
            raise RuntimeError(f"{entry['name']} {name}: {result.error}")
        model = refit_model(Choice((result,), (1.0,), result.metrics), data, settings)
        pred = predict_scores(model, X_test, data.classes)
        test_score = score_all(task, y_test, pred, None, data.y_range, data.positive)[metric.name]
        rounds = result.refit_params.get("n_estimators")
        return Scored(result.metrics[metric.name], test_score,
                      None if rounds is None else int(rounds),  # type: ignore[arg-type]
                      time.perf_counter() - started, result, pred)

    out: dict[str, dict[str, Scored]] = {"a": {}, "b": {}}
    for name, (family, params) in configurations(xgboost).items():
        probe = build_pipeline(family, params, task=task, roles=profile.roles, seed=seed,
                               n_jobs=1, n_classes=n_classes or 0)[-1]
        stops = name in BOOSTERS and (watch is not None or always_stops(probe))
        out["a"][name] = scored(name, family, params, variants["a"])
        # A model that does not stop early fits alike under both variants.
        out["b"][name] = (scored(name, family, params, variants["b"]) if stops
                          else out["a"][name])
    record: dict = {"table": entry["name"], "task": entry["task"], "metric": metric.name,
                    "greater": metric.greater_is_better, "scheme": data.scheme,
                    "rows": len(train), "test_rows": len(test), "watch": watch}
    for variant, models in out.items():
        record[variant] = {n: {"cv": s.cv, "test": s.test, "rounds": s.rounds,
                               "seconds": round(s.seconds, 2)} for n, s in models.items()}
        pool = [models[n].result for n in models]
        blend = voting_ensemble(pool, data, metric, 15)  # type: ignore[arg-type]
        if blend is None:  # one member: the best single model
            best = max(models, key=lambda n: models[n].cv * (1 if metric.greater_is_better
                                                             else -1))
            weights = {best: 1.0}
            ens_cv = models[best].cv
        else:
            names = {id(models[n].result): n for n in models}
            weights = {names[id(m)]: w for m, w in zip(blend.members, blend.weights, strict=True)}
            ens_cv = blend.metrics[metric.name]
        total = sum(weights.values())
        pred = sum(models[n].test_pred * (w / total) for n, w in weights.items())
        record[variant]["ensemble"] = {
            "cv": ens_cv,
            "test": score_all(task, y_test, pred, None, data.y_range, data.positive)[metric.name],
            "booster_weight": sum(w for n, w in weights.items() if n in BOOSTERS) / total}
    return record


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
