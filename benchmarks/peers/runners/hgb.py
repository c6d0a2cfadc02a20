"""The baseline: scikit-learn's HistGradientBoosting with default settings (native categories)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _common import arguments, features, report, write_model_predictions
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

# HGB's native categories take at most 255 levels (its bins); a column with more (titanic's names)
# enters as its level codes instead, a number, as a user of the defaults would have to do.
MAX_LEVELS = 255


def _categories(X: pd.DataFrame, levels: dict[str, list] | None = None) -> pd.DataFrame:
    # Strings become pandas categories so HGB's categorical_features="from_dtype" sees them;
    # the test rows reuse the training levels.
    X = X.copy()
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]) or pd.api.types.is_bool_dtype(X[column]):
            cats = None if levels is None else levels[column]
            # Plain objects, missing as NaN: HGB's encoder refuses pandas' NA scalar.
            values = X[column].astype("string").to_numpy(dtype=object, na_value=np.nan)
            X[column] = pd.Categorical(values, categories=cats)
    return X


def _codes(X: pd.DataFrame, wide: list[str]) -> pd.DataFrame:
    X = X.copy()
    for column in wide:
        X[column] = X[column].cat.codes.astype(float).where(X[column].notna())
    return X


def main() -> None:
    args = arguments()
    X, y = features(args.train, args.target)
    # A column with no value at all crashes HGB's binning; it carries nothing, so it goes.
    empty = [c for c in X.columns if X[c].isna().all()]
    X = _categories(X.drop(columns=empty))
    levels = {c: list(X[c].cat.categories) for c in X.columns
              if isinstance(X[c].dtype, pd.CategoricalDtype)}
    wide = [c for c, cats in levels.items() if len(cats) > MAX_LEVELS]
    X = _codes(X, wide)
    kind = (HistGradientBoostingRegressor if args.task == "regression"
            else HistGradientBoostingClassifier)
    model = kind(random_state=args.seed).fit(X, y)
    report(model=type(model).__name__)
    X_test, _ = features(args.test, args.target)
    X_test = _codes(_categories(X_test.drop(columns=empty), levels), wide)
    write_model_predictions(args.out, model, X_test, args.task)


if __name__ == "__main__":
    main()
