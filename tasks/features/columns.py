"""How a column is measured and read: numbers, category levels as text, dates. Featurization
decides roles with these, and the encoders apply them at fit and predict time.

Fitted pipelines pickle numeric_frame and category_text by reference: module-level, names kept.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = [
    "category_text",
    "date_format",
    "integral",
    "is_row_count",
    "looks_like_dates",
    "mean_words",
    "numeric_frame",
    "to_datetime",
    "DATE_PARTS",
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
DATE_FORMATS = (
    "ISO8601", *(day + clock for day in _DAY_FORMATS for clock in ("", " %H:%M", " %H:%M:%S"))
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


def _value_text(value: object) -> str | float:  # float: NaN, pandas' missing value
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _number_text(float(value))
    return np.nan if value is None or value is pd.NA or value is pd.NaT else str(value)


def _number_text(value: float) -> str | float:
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
