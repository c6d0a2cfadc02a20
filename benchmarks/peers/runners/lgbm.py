"""The scale benchmark's baseline: LightGBM with default settings, fitted once."""

from __future__ import annotations

import pandas as pd
from _common import arguments, features, report, write_model_predictions
from lightgbm import LGBMClassifier, LGBMRegressor


def _categories(X: pd.DataFrame, levels: dict[str, pd.Index] | None = None) -> pd.DataFrame:
    # Strings become pandas categories, which LightGBM takes as categorical features by default;
    # the test rows reuse the training levels (unseen ones become missing).
    X = X.copy()
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]) or pd.api.types.is_bool_dtype(X[column]):
            cats = None if levels is None else levels[column]
            X[column] = pd.Categorical(X[column].astype("string"), categories=cats)
    return X


def main() -> None:
    args = arguments()
    X, y = features(args.train, args.target)
    X = _categories(X)
    levels = {c: X[c].cat.categories for c in X.columns
              if isinstance(X[c].dtype, pd.CategoricalDtype)}
    kind = LGBMRegressor if args.task == "regression" else LGBMClassifier
    model = kind(random_state=args.seed, n_jobs=args.cores, verbose=-1).fit(X, y)
    report(model=type(model).__name__)
    X_test, _ = features(args.test, args.target)
    write_model_predictions(args.out, model, _categories(X_test, levels), args.task)


if __name__ == "__main__":
    main()
