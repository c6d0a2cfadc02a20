"""FLAML: AutoML().fit(time_budget=...), told the benchmark's metric, cores and seed."""

from __future__ import annotations

from _common import arguments, features, report, write_model_predictions
from flaml import AutoML

METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def main() -> None:
    args = arguments()
    X, y = features(args.train, args.target)
    automl = AutoML()
    automl.fit(
        X, y,
        task="regression" if args.task == "regression" else "classification",
        metric=METRIC[args.task], time_budget=args.budget, n_jobs=args.cores, seed=args.seed,
        verbose=0, log_file_name="", mlflow_logging=False,
    )
    report(model=automl.best_estimator, config=automl.best_config)
    X_test, _ = features(args.test, args.target)
    write_model_predictions(args.out, automl, X_test, args.task)


if __name__ == "__main__":
    main()
