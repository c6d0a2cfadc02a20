"""How a column is measured, read and encoded: the pieces tasks.features decides with and
assembles the preprocessing from.

Fitted pipelines pickle the transformers and functions by reference: module-level, names kept.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
    TargetEncoder,
)

__all__ = [
    "DatetimeFeatures",
    "TextTfidf",
    "category_text",
    "date_format",
    "integral",
    "is_row_count",
    "looks_like_dates",
    "mean_words",
    "numeric_block",
    "numeric_frame",
    "onehot_block",
    "target_block",
]

# Share of sampled values that must look like and parse as dates for a text column to be dates.
DATE_SHARE = 0.9
# Distinct values tried as dates, values whose words are counted: enough to decide, and cheap.
DATE_SAMPLE = 200
WORDS_SAMPLE = 1000
# Anchored, so numbers ("2649", "12.5"), tickets ("A/5 21171") and IP addresses do not pass;
# pandas' parser alone reads "2649" as the year 2649.
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 2020-01-31, 2020/1/31
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"  # 31/01/2020, 1-31-20
    r"|\d{1,2}\s+[a-z]{3,9}\.?,?\s+\d{2,4}"  # 31 January 2020
    r"|([a-z]{3,9},?\s+)?[a-z]{3,9}\.?\s+\d{1,2},?\s+\d{2,4})",  # Friday, Jan 31, 2020
    re.IGNORECASE,
)
# Calendar parts a datetime expands into; a part constant in the training rows is left out.
DATE_PARTS = (
    "year", "month", "day", "day_of_week", "day_of_year", "quarter", "hour", "minute", "second"
)
# Text formats tried on the training values, best share first, ties in this order (ISO, then
# month-first as pandas defaults). Fixed formats parse fast and never guess per value.
_DAY_FORMATS = (
    "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%y", "%d/%m/%y", "%m-%d-%Y", "%d-%m-%Y", "%d.%m.%Y",
    "%Y/%m/%d", "%Y.%m.%d", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%A, %B %d, %Y",
)
DATE_FORMATS = ("ISO8601",) + tuple(
    day + clock for day in _DAY_FORMATS for clock in ("", " %H:%M", " %H:%M:%S")
)


def numeric_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Floats, whatever arrived: text that is not a number becomes missing, booleans 0/1,
    durations seconds, datetimes seconds since 1970."""
    return frame.apply(_as_float).astype("float64")


def _as_float(col: pd.Series) -> pd.Series:
    if pd.api.types.is_timedelta64_dtype(col):
        return col.dt.total_seconds()
    if pd.api.types.is_datetime64_any_dtype(col):
        return (col - pd.Timestamp(0, tz=getattr(col.dt, "tz", None))).dt.total_seconds()
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64")
    if pd.api.types.is_numeric_dtype(col):
        return col.astype("float64")  # nullable Int64/Float64: pd.NA becomes NaN
    return pd.to_numeric(col.astype(object), errors="coerce")


def category_text(frame: pd.DataFrame) -> pd.DataFrame:
    """One type for every category level; missing stays NaN.

    Integral numbers are written without a decimal point, so the level 3 of an integer column
    stays "3" when a missing value at predict time turns the column into floats (3.0).
    """
    return frame.apply(_as_text).astype(object)


def _as_text(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.astype("float64").map(_number_text).astype(object)
    if col.dtype == object:  # anything at all, e.g. ints and NaN after a gap at predict time
        return col.map(_value_text).astype(object)
    return col.astype("str").astype(object)


def _value_text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _number_text(float(value))
    return np.nan if value is None or value is pd.NA or value is pd.NaT else str(value)


def _number_text(value: float) -> Any:
    if np.isnan(value):
        return np.nan
    return f"{value:.0f}" if value.is_integer() else repr(value)


def integral(col: pd.Series) -> bool:
    """Numbers that are all whole (integers, or floats of integers with gaps)."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    values = col.dropna().to_numpy(dtype="float64")
    return bool(np.all(np.mod(values, 1) == 0))


def is_row_count(col: pd.Series) -> bool:
    """Unique whole numbers that are monotonic or a shuffled run (1..n): they count rows."""
    if col.isna().any() or col.nunique() != len(col) or not integral(col):
        return False
    return bool(
        col.is_monotonic_increasing or col.is_monotonic_decreasing
        or col.max() - col.min() == len(col) - 1
    )


def mean_words(col: pd.Series) -> float:
    """Average whitespace-separated words per value, over a sample of the values."""
    values = col.dropna()
    if len(values) > WORDS_SAMPLE:
        values = values.sample(WORDS_SAMPLE, random_state=0)
    return float(values.astype("str").str.split().str.len().mean())


def looks_like_dates(values: pd.Series) -> bool:
    """Whether a text column holds dates: most sampled values look like and parse as dates."""
    sample = _sample(values)
    if sample.empty or sample.map(lambda v: bool(_DATE_LIKE.match(v))).mean() < DATE_SHARE:
        return False
    return _parsed_share(sample, date_format(sample)) >= DATE_SHARE


def date_format(values: pd.Series) -> str:
    """The format most of the values parse with, else "mixed" (slower: guessed per value)."""
    sample = _sample(values)
    share, best = max((_parsed_share(sample, f), -i) for i, f in enumerate(DATE_FORMATS))
    return DATE_FORMATS[-best] if share >= DATE_SHARE else "mixed"


def to_datetime(col: pd.Series, fmt: str) -> pd.Series:
    """Timestamps; what does not parse is NaT. Text with time zones is read as UTC."""
    if pd.api.types.is_datetime64_any_dtype(col):
        return col
    text = col.astype(object).where(col.notna(), None).astype("str")
    return pd.to_datetime(text, format=fmt, errors="coerce", utc=True)


def _sample(values: pd.Series) -> pd.Series:
    unique = pd.Series(values.dropna().unique()).astype("str")
    return unique.sample(DATE_SAMPLE, random_state=0) if len(unique) > DATE_SAMPLE else unique


def _parsed_share(sample: pd.Series, fmt: str) -> float:
    return float(pd.to_datetime(sample, format=fmt, errors="coerce", utc=True).notna().mean())


def _scaler(scaling: str | None) -> list[BaseEstimator]:
    if scaling == "standard":
        return [StandardScaler()]
    if scaling == "minmax":
        return [MinMaxScaler(clip=True)]  # clip: predict-time values beyond the training range
    return []


def numeric_block(
    head: BaseEstimator, how: str, scaling: str | None, *, indicator: bool = True
) -> Pipeline:
    """head (numbers or calendar parts) -> imputed with `how`, missing flags, scaled."""
    imputer = SimpleImputer(strategy=how, fill_value=0 if how == "constant" else None,
                            add_indicator=indicator, keep_empty_features=True)
    return make_pipeline(head, imputer, *_scaler(scaling))


def _category_imputer(how: str) -> SimpleImputer:
    if how == "constant":
        return SimpleImputer(strategy="constant", fill_value="missing")
    return SimpleImputer(strategy="most_frequent", keep_empty_features=True)


def onehot_block(how: str) -> Pipeline:
    """Levels as text -> imputed ("missing" level or the top one) -> one column per level."""
    return make_pipeline(
        FunctionTransformer(category_text, feature_names_out="one-to-one"),
        _category_imputer(how),
        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False),
    )


def target_block(task: str, how: str, scaling: str | None) -> Pipeline:
    """Levels as text -> imputed -> the (cross-fitted) target mean per level, scaled."""
    return make_pipeline(
        FunctionTransformer(category_text, feature_names_out="one-to-one"),
        _category_imputer(how),
        TargetEncoder(target_type="continuous" if task == "regression" else "auto"),
        *_scaler(scaling),
    )


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Datetime (or date text) columns -> calendar parts as numbers, NaN where the date is missing,
    plus one `<column>_missing` flag when the training rows had missing dates.

    Which parts, and the text format, are decided on the training rows: a part that does not
    vary there (the hour of plain dates) carries no information and is left out.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> DatetimeFeatures:
        X = pd.DataFrame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.formats_: dict[Any, str] = {}
        self.parts_: dict[Any, list[str]] = {}
        self.flags_: dict[Any, bool] = {}
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

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        X = pd.DataFrame(X)
        blocks = []
        for name in self.feature_names_in_:
            when = to_datetime(X[name], self.formats_[name])
            parts = self._parts(when)
            blocks.extend(parts[p].to_numpy(dtype="float64") for p in self.parts_[name])
            if self.flags_[name]:
                blocks.append(when.isna().to_numpy(dtype="float64"))
        return np.column_stack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = []
        for name in self.feature_names_in_:
            names.extend(f"{name}_{part}" for part in self.parts_[name])
            if self.flags_[name]:
                names.append(f"{name}_missing")
        return np.asarray(names, dtype=object)

    @staticmethod
    def _parts(when: pd.Series) -> dict[str, pd.Series]:
        return {part: getattr(when.dt, part).astype("float64") for part in DATE_PARTS}


class TextTfidf(TransformerMixin, BaseEstimator):
    """TF-IDF of word 1- and 2-grams of one text column, as a dense block of bounded width.

    Missing text is the empty document; a column without a single word gives one zero column.
    """

    def __init__(self, max_features: int = 200, ngram_range: tuple[int, int] = (1, 2)) -> None:
        self.max_features = max_features
        self.ngram_range = ngram_range

    def fit(self, X: pd.DataFrame, y: Any = None) -> TextTfidf:
        X = pd.DataFrame(X)
        if X.shape[1] != 1:
            raise ValueError(f"TextTfidf takes one column, got {X.shape[1]}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.vectorizer_: TfidfVectorizer | None = TfidfVectorizer(
            ngram_range=self.ngram_range, max_features=self.max_features, sublinear_tf=True
        )
        try:
            self.vectorizer_.fit(self._documents(X))
        except ValueError:  # empty vocabulary: no word of two letters in any training row
            self.vectorizer_ = None
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        X = pd.DataFrame(X)
        if self.vectorizer_ is None:
            return np.zeros((len(X), 1))
        return self.vectorizer_.transform(self._documents(X)).toarray()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        name = self.feature_names_in_[0]
        words = ["empty"] if self.vectorizer_ is None else self.vectorizer_.get_feature_names_out()
        return np.asarray([f"{name}_tfidf_{w}" for w in words], dtype=object)

    def _documents(self, X: pd.DataFrame) -> list[str]:
        col = X[self.feature_names_in_[0]]
        return [v if isinstance(v, str) else "" if pd.isna(v) else str(v) for v in col.tolist()]
