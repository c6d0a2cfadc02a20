"""Does a temperature fitted on out-of-fold probabilities lower the held-out log loss of the
model refit on all rows? The figures behind tasks.final.calibration.MIN_GAIN, from the multiclass
tables of shared/datasets/meta/ (never the benchmark tables).

For each table and seed: a seeded 80/20 split; on the 80%, the run's own validation (CV or
holdout) with each family's first default; the temperature fitted on its validation
probabilities; the refit model's log loss on the 20% without and with it.

    .venv/bin/python benchmarks/calibration.py [--datasets chile_vote,olive_area]
        [--families lightgbm,xgboost,catboost] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from tasks.config import parse_config
from tasks.data.inspect import inspect_data
from tasks.data.split import SplitPlan, split_data
from tasks.final.calibration import MIN_GAIN, fit_temperature
from tasks.final.choice import Choice
from tasks.final.refit import refit_model
from tasks.metrics import early_stopping_watch, score_all
from tasks.models.predict import predict_scores, scale_probabilities
from tasks.search.candidates import Candidate, TrialSettings
from tasks.search.evaluate import evaluate_candidate
from tasks.search.spaces import load_space

META = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "meta"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", help="multiclass meta tables (default: all of them)")
    parser.add_argument("--families", default="lightgbm,xgboost,catboost")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    manifest = {e["name"]: e for e in json.loads((META / "manifest.json").read_text())}
    names = (args.datasets.split(",") if args.datasets
             else [n for n, e in manifest.items() if e["task"] == "multiclass"])
    print("| dataset | seed | family | T | validation gain | held-out log loss without / with T |")
    print("|---|---|---|---|---|---|")
    tally = {"above": [0, 0], "below": [0, 0]}  # [held-out better, worse] by validation gain
    for name in names:
        entry = manifest[name]
        for seed in (int(s) for s in args.seeds.split(",")):
            frame = pd.read_parquet(META / entry["file"])
            target = entry["target"]
            counts = frame[target].value_counts()
            train, test = train_test_split(frame, test_size=0.2, random_state=seed,
                                           stratify=frame[target] if counts.min() >= 2 else None)
            config = parse_config(training_data=name, target=target, task="classification",
                                  primary_metric="log_loss", random_state=seed)
            train = train.reset_index(drop=True)
            profile = inspect_data(config, train)
            data, _ = split_data(SplitPlan.of(config), profile, train)
            assert data.classes is not None
            settings = TrialSettings(profile.roles, seed=seed, n_jobs=2, metric="log_loss",
                                     early_stopping=early_stopping_watch(profile.metric,
                                                                         len(data.classes)))
            y_test = np.searchsorted(data.classes, test[target].to_numpy())
            labels = range(len(data.classes))
            for family in args.families.split(","):
                candidate = Candidate(0, family, dict(load_space(family).defaults[0]))
                result = evaluate_candidate(candidate, data, settings)
                if not result.ok or result.predictions is None:
                    continue
                t = fit_temperature(result.predictions, np.asarray(data.y_valid, int),
                                    data.weights_valid)
                before = result.metrics["log_loss"]
                after = score_all(data.task, data.y_valid,
                                  scale_probabilities(result.predictions, t), None,
                                  data.y_range)["log_loss"]
                gain = (before - after) / before
                choice = Choice((result,), (1.0,), result.metrics)
                model = refit_model(replace(choice, temperature=1.0), data, settings)
                proba = predict_scores(model, test.drop(columns=target), data.classes)
                plain = log_loss(y_test, proba, labels=labels)
                scaled = log_loss(y_test, scale_probabilities(proba, t), labels=labels)
                tally["above" if gain >= MIN_GAIN else "below"][0 if scaled < plain else 1] += 1
                print(f"| {name} | {seed} | {family} | {t:.2f} | {gain:.2%} | "
                      f"{plain:.4f} / {scaled:.4f} |", flush=True)
    for side, (better, worse) in tally.items():
        print(f"\nValidation gain {side} MIN_GAIN ({MIN_GAIN:.1%}): the temperature lowered the "
              f"held-out log loss {better} times, raised it {worse} times.")


if __name__ == "__main__":
    main()
