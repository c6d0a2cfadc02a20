"""AutoGluon-Tabular: TabularPredictor(...).fit(time_limit=..., presets=...), medium_quality
unless --presets says otherwise."""

from __future__ import annotations

import pandas as pd
from _common import arguments, report, write_predictions
from autogluon.tabular import TabularPredictor

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}


def main() -> None:
    args = arguments()
    train = pd.read_parquet(args.train)
    predictor = TabularPredictor(
        label=args.target, problem_type=args.task, eval_metric=METRIC[args.task],
        path=args.workdir, verbosity=0,
    ).fit(train, time_limit=args.budget, presets=args.presets, num_cpus=args.cores, num_gpus=0)
    report(model=predictor.model_best)
    test = pd.read_parquet(args.test).drop(columns=[args.target])
    if args.task == "regression":
        write_predictions(args.out, predictor.predict(test))
    else:
        proba = predictor.predict_proba(test, as_multiclass=True)
        write_predictions(args.out, proba.to_numpy(), proba.columns)


if __name__ == "__main__":
    main()
