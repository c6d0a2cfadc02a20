"""CSV and TSV as spreadsheets export them: the encoding detected (or given), a byte-order mark
skipped, the delimiter sniffed, numbers written with thousands separators or decimal commas read
as numbers, trailing empty columns dropped, and a header that repeats a name refused (pandas
would silently rename the copy).

The file is opened twice, through the caller's opener: once for a sample of its first bytes
(encoding, delimiter, header), once to read it streamed.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
from collections import Counter
from typing import IO, TYPE_CHECKING

import pandas as pd

from tasks.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["read_delimited", "read_header"]

log = logging.getLogger("automl")

SAMPLE_BYTES = 1 << 20
_DELIMITERS = ",;\t|"
# A number as a spreadsheet writes it: digits grouped in threes, then a decimal part.
_GROUPED = r"[+-]?\d{{1,3}}(?:{group}\d{{3}})+(?:{decimal}\d+)?|[+-]?\d+(?:{decimal}\d+)?"
_UNNAMED = re.compile(r"Unnamed: \d+")


def read_delimited(
    open_: Callable[[], IO[bytes]], fmt: str, shown: str, encoding: str | None = None
) -> pd.DataFrame:
    chosen, sep, decimal = _layout(open_, fmt, shown, encoding)
    try:
        with open_() as handle:
            frame = pd.read_csv(handle, sep=sep, encoding=chosen, decimal=decimal)
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise DataError(
                f"{shown} is not {encoding} text: {exc.reason} at byte {exc.start}; "
                "give the file's encoding (encoding=cp1252, latin-1, utf-16...)"
            ) from None
        # Past the sample, a byte that UTF-8 does not allow: the common 8-bit export encoding.
        chosen = "cp1252"
        with open_() as handle:
            frame = pd.read_csv(handle, sep=sep, encoding=chosen, encoding_errors="replace",
                                decimal=decimal)
    if chosen.replace("_", "-").lower() not in ("utf-8", "utf-8-sig", "ascii"):
        log.info("%s read as %s text (not UTF-8); set encoding to override", shown, chosen)
    return _numbers(_without_empty_tail(frame), group="." if decimal == "," else ",",
                    decimal=decimal)


def read_header(
    open_: Callable[[], IO[bytes]], fmt: str, shown: str, encoding: str | None = None
) -> list[str]:
    """The column names read_delimited gives, from the header alone: the same encoding,
    delimiter and header checks (a trailing nameless column is left out, as the whole read
    leaves it out when it is empty)."""
    chosen, sep, decimal = _layout(open_, fmt, shown, encoding)
    with open_() as handle:
        frame = pd.read_csv(handle, sep=sep, encoding=chosen, decimal=decimal, nrows=0)
    return [str(name) for name in _without_empty_tail(frame).columns]


def _layout(
    open_: Callable[[], IO[bytes]], fmt: str, shown: str, encoding: str | None
) -> tuple[str, str, str]:
    """The encoding, delimiter and decimal mark, from a sample of the first bytes; a header
    that repeats a name is refused."""
    with open_() as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip():
        raise pd.errors.EmptyDataError("empty")
    chosen = encoding or _encoding(sample)
    text = sample.decode(chosen, errors="replace")
    sep = "\t" if fmt == "tsv" else _delimiter(text)
    _check_header(text, sep, shown)
    # A semicolon-separated file is the export of a locale whose decimal mark is a comma.
    decimal = "," if sep == ";" else "."
    return chosen, sep, decimal


def _encoding(sample: bytes) -> str:
    """UTF-8 (with or without a byte-order mark) when the sample decodes as it, else the
    detected encoding (UTF-16 from its mark, cp1252, latin-1...)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return best.encoding if best is not None else "cp1252"


def _delimiter(text: str) -> str:
    """A comma when the header has one (free text with semicolons must not fool the sniffer),
    else what the sample shows: the semicolon of European exports, a tab, a pipe."""
    if "," in text.partition("\n")[0]:
        return ","
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _check_header(text: str, sep: str, shown: str) -> None:
    header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    names = [name.strip() for name in header]
    repeated = [name for name, count in Counter(names).items() if count > 1 and name]
    if repeated:
        where = "; ".join(
            f"'{name}' (columns {', '.join(str(i + 1) for i, n in enumerate(names) if n == name)})"
            for name in repeated
        )
        raise DataError(
            f"{shown} repeats column name(s) {where}; give each column its own name"
        )


def _without_empty_tail(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the nameless, empty columns a spreadsheet leaves after the last used one."""
    tail = 0
    for name in reversed(frame.columns):
        if not (_UNNAMED.fullmatch(str(name)) and frame[name].isna().all()):
            break
        tail += 1
    return frame.iloc[:, : len(frame.columns) - tail] if tail else frame


def _numbers(frame: pd.DataFrame, group: str, decimal: str) -> pd.DataFrame:
    """Text columns whose every value is a number with thousands separators ("1,234.5") or a
    decimal comma ("1.234,5" in a semicolon file) become numbers."""
    pattern = _GROUPED.format(group=re.escape(group), decimal=re.escape(decimal))
    converted = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        values = column.dropna().astype(str).str.strip()
        if values.empty or not values.str.fullmatch(pattern).all():
            continue
        plain = values.str.replace(group, "", regex=False).str.replace(decimal, ".", regex=False)
        converted[name] = pd.to_numeric(plain).reindex(column.index)
    return frame.assign(**converted) if converted else frame
