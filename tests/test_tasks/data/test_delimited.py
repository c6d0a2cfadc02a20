"""CSV and TSV files as spreadsheets and other tools export them, read through read_table."""

from __future__ import annotations

import codecs

import pandas as pd
import pytest

from tasks.config import parse_config
from tasks.data.storage import read_table
from tasks.errors import ConfigError, DataError

CITIES = "city,price\nZürich,10\nMálaga,12\nKraków,9\n"


def test_a_latin1_csv_is_read_with_its_accents(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_bytes(CITIES.encode("latin-1"))
    frame = read_table(str(path))
    assert list(frame["city"]) == ["Zürich", "Málaga", "Kraków"]
    assert list(frame["price"]) == [10, 12, 9]


def test_a_non_utf8_byte_past_the_sample_still_reads(tmp_path):
    rows = "".join(f"row{i},{i}\n" for i in range(120_000))  # about 1.3 MB of ASCII first
    path = tmp_path / "late.csv"
    path.write_bytes(("name,value\n" + rows + "Zürich,1\n").encode("cp1252"))
    frame = read_table(str(path))
    assert len(frame) == 120_001 and frame["name"].iloc[-1] == "Zürich"


def test_a_given_encoding_is_used_and_a_wrong_one_is_a_sentence(tmp_path):
    path = tmp_path / "cities.csv"
    path.write_bytes(CITIES.encode("latin-1"))
    assert read_table(str(path), encoding="latin-1")["city"].iloc[0] == "Zürich"
    with pytest.raises(DataError, match=r"^training data '.*cities.csv' is not utf-8 text: invalid "
                                        r"(start|continuation) byte at byte \d+; give the file's "
                                        r"encoding"):
        read_table(str(path), what="training data", encoding="utf-8")


def test_an_unknown_encoding_name_is_refused_by_the_config():
    with pytest.raises(ConfigError, match=r"^encoding='utf9' is invalid: an unknown text encoding"):
        parse_config(training_data="t.csv", target="y", encoding="utf9")


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16"])
def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path, codec):
    path = tmp_path / "marked.csv"
    path.write_bytes(CITIES.encode(codec))
    assert path.read_bytes().startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE,
                                         codecs.BOM_UTF16_BE))
    frame = read_table(str(path))
    assert list(frame.columns) == ["city", "price"] and frame["city"].iloc[2] == "Kraków"


def test_a_header_that_repeats_a_name_is_refused_naming_it(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("id,amount,id,note\n1,2,3,x\n")
    with pytest.raises(DataError, match=r"^training data '.*twice.csv' repeats column name\(s\) "
                                        r"'id' \(columns 1, 3\); give each column its own name$"):
        read_table(str(path), what="training data")


def test_thousands_separators_are_read_as_numbers(tmp_path):
    path = tmp_path / "grouped.csv"
    path.write_text('item,amount,code\na,"1,234.5",1.2.3\nb,"12",4.5.6\nc,"1,000,000",7.8.9\n')
    frame = read_table(str(path))
    assert list(frame["amount"]) == [1234.5, 12.0, 1_000_000.0]
    assert list(frame["code"]) == ["1.2.3", "4.5.6", "7.8.9"]  # not a number: left as text


def test_a_semicolon_file_with_decimal_commas_is_read_as_numbers(tmp_path):
    path = tmp_path / "european.csv"
    path.write_bytes("Stadt;Preis;Menge;Version\nZürich;1.234,5;2,5;1.2\nMálaga;12,25;3;1.3\n"
                     .encode("cp1252"))
    frame = read_table(str(path))
    assert list(frame.columns) == ["Stadt", "Preis", "Menge", "Version"]
    assert list(frame["Preis"]) == [1234.5, 12.25]
    assert list(frame["Menge"]) == [2.5, 3.0]
    # Where the comma marks decimals, "1.2" is no number (a point groups thousands): text.
    assert list(frame["Version"]) == ["1.2", "1.3"]


def test_trailing_empty_columns_are_dropped_and_inner_ones_kept(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("a,,b,,\n1,,2,,\n3,,4,,\n")
    frame = read_table(str(path))
    assert list(frame.columns) == ["a", "Unnamed: 1", "b"]
    assert pd.isna(frame["Unnamed: 1"]).all()


def test_a_comma_file_with_semicolons_in_its_text_keeps_its_commas(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("id,note\n1,a;b;c\n2,d;e\n3,f\n")
    assert list(read_table(str(path))["note"]) == ["a;b;c", "d;e", "f"]
