"""The encoders featurization assembles the preprocessing from: numbers, one-hot and target
encoding of categories, calendar parts of dates, TF-IDF of text.

Fitted pipelines pickle DatetimeFeatures and TextTfidf by reference: module-level, names kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)

from tasks.features.columns import DATE_PARTS, category_text, date_format, to_datetime

if TYPE_CHECKING:
    from collections.abc import Hashable

    from sklearn.pipeline import Pipeline

    from tasks.types import Array, Transformer

__all__ = ["DatetimeFeatures", "FEATURE_DTYPE", "TextTfidf", "as_features", "numeric_block",
           "onehot_block", "ordinal_block", "target_block"]

# The model input's type. Every block ends in it, so the stacked matrix (one hstack of the
# blocks, which would take the widest type) is half the size of float64: on 350,000 rows and 67
# columns 90 MB instead of 180 in every trial. The tree libraries fit on float32 anyway.
FEATURE_DTYPE = np.float32


def as_features(X: Array) -> Array:
    """A block's output in FEATURE_DTYPE (a module-level function: fitted pipelines pickle it)."""
    return np.asarray(X, dtype=FEATURE_DTYPE)


def _cast() -> FunctionTransformer:
    return FunctionTransformer(as_features, feature_names_out="one-to-one")


def _scaler(scaling: str | None) -> list[Transformer]:
    if scaling == "standard":
        return [StandardScaler()]
    if scaling == "minmax":
        return [MinMaxScaler(clip=True)]  # clip: predict-time values beyond the training range
    return []


def numeric_block(
    head: Transformer, how: str, scaling: str | None, *, indicator: bool = True
) -> Pipeline:
    """head (numbers or calendar parts) -> imputed with `how`, missing flags, scaled."""
    imputer = SimpleImputer(strategy=how, fill_value=0 if how == "constant" else None,
                            add_indicator=indicator, keep_empty_features=True)
    return make_pipeline(head, imputer, *_scaler(scaling), _cast())


def _category_imputer(how: str) -> SimpleImputer:
    if how == "constant":
        return SimpleImputer(strategy="constant", fill_value="missing")
    return SimpleImputer(strategy="most_frequent", keep_empty_features=True)


def onehot_block(how: str) -> Pipeline:
    """Levels as text -> imputed ("missing" level or the top one) -> one column per level."""
    return make_pipeline(
        FunctionTransformer(category_text, feature_names_out="one-to-one"),
        _category_imputer(how),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False,
                      dtype=FEATURE_DTYPE),
    )


def ordinal_block(how: str) -> Pipeline:
    """Levels as text -> imputed -> one integer code per level (-1: a level unseen in training),
    for models that take categories natively; codes follow the sorted levels."""
    return make_pipeline(
        FunctionTransformer(category_text, feature_names_out="one-to-one"),
        _category_imputer(how),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                       dtype=FEATURE_DTYPE),
    )


def target_block(task: str, how: str, scaling: str | None) -> Pipeline:
    """Levels as text -> imputed -> the (cross-fitted) target mean per level, scaled."""
    return make_pipeline(
        FunctionTransformer(category_text, feature_names_out="one-to-one"),
        _category_imputer(how),
        # Its cross-fitting folds are shuffled: without a seed the same run gave another model in
        # every process (resume_callback: CV AUC 0.640 to 0.666 over six).
        TargetEncoder(target_type="continuous" if task == "regression" else "auto",
                      random_state=0),
        *_scaler(scaling),
        _cast(),
    )


# scikit-learn ships no types: its base classes are Any to mypy.
class DatetimeFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Datetime (or date text) columns -> calendar parts as numbers, NaN where the date is missing,
    plus one `<column>_missing` flag when the training rows had missing dates.

    Which parts, and the text format, are decided on the training rows: a part that does not
    vary there (the hour of plain dates) carries no information and is left out.
    """

    def fit(self, X: pd.DataFrame, y: object = None) -> DatetimeFeatures:
        X = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        # Keyed by column name: any label a DataFrame allows.
        self.formats_: dict[Hashable, str] = {}
        self.parts_: dict[Hashable, list[str]] = {}
        self.flags_: dict[Hashable, bool] = {}
        for name in X.columns:
            col = X[name]
            # A datetime column that arrives as text at predict time (from a CSV) is ISO text.
            fmt = "ISO8601" if pd.api.types.is_datetime64_any_dtype(col) else date_format(col)
            when = to_datetime(col, fmt)
            parts = self._parts(when)
            varying = [p for p, v in parts.items() if v.nunique(dropna=True) > 1]
            self.formats_[name] = fmt
            self.parts_[name] = varying or ["year"]  # never zero columns: the imputer needs one
            self.flags_[name] = bool(when.isna().any())
        return self

    def transform(self, X: pd.DataFrame) -> Array:
        X = pd.DataFrame(X)
        blocks: list[Array] = []
        for name in self.feature_names_in_:
            when = to_datetime(X[name], self.formats_[name])
            parts = self._parts(when)
            blocks.extend(parts[p].to_numpy(dtype="float64") for p in self.parts_[name])
            if self.flags_[name]:
                blocks.append(when.isna().to_numpy(dtype="float64"))
        return np.column_stack(blocks)

    def get_feature_names_out(self, input_features: object = None) -> Array:
        names: list[str] = []
        for name in self.feature_names_in_:
            names.extend(f"{name}_{part}" for part in self.parts_[name])
            if self.flags_[name]:
                names.append(f"{name}_missing")
        return np.asarray(names, dtype=object)

    @staticmethod
    def _parts(when: pd.Series) -> dict[str, pd.Series]:
        return {part: getattr(when.dt, part).astype("float64") for part in DATE_PARTS}


class TextTfidf(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # as DatetimeFeatures
    """TF-IDF of word 1- and 2-grams of one text column, as a dense block of bounded width.

    Missing text is the empty document; a column without a single word gives one zero column.
    """

    def __init__(self, max_features: int = 200, ngram_range: tuple[int, int] = (1, 2)) -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range

    def fit(self, X: pd.DataFrame, y: object = None) -> TextTfidf:
        X = pd.DataFrame(X)
        if X.shape[1] != 1:
            raise ValueError(f"TextTfidf takes one column, got {X.shape[1]}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.vectorizer_: TfidfVectorizer | None = TfidfVectorizer(
            ngram_range=self.ngram_range, max_features=self.max_features, sublinear_tf=True,
            dtype=FEATURE_DTYPE,
        )
        try:
            self.vectorizer_.fit(self._documents(X))
        except ValueError:  # empty vocabulary: no word of two letters in any training row
            self.vectorizer_ = None
        return self

    def transform(self, X: pd.DataFrame) -> Array:
        X = pd.DataFrame(X)
        if self.vectorizer_ is None:
            return np.zeros((len(X), 1), dtype=FEATURE_DTYPE)
        dense: Array = self.vectorizer_.transform(self._documents(X)).toarray()
        return dense

    def get_feature_names_out(self, input_features: object = None) -> Array:
        name = self.feature_names_in_[0]
        words = ["empty"] if self.vectorizer_ is None else self.vectorizer_.get_feature_names_out()
        return np.asarray([f"{name}_tfidf_{w}" for w in words], dtype=object)

    def _documents(self, X: pd.DataFrame) -> list[str]:
        col = X[self.feature_names_in_[0]]
        return [v if isinstance(v, str) else "" if pd.isna(v) else str(v) for v in col.tolist()]
