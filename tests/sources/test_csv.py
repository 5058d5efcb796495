"""The CSV reader: options, encodings, dialects, line numbers, errors, round trips."""

from __future__ import annotations

import codecs
import csv
import functools
import io
import os
import subprocess
import tracemalloc
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx_connector.errors import ConfigError, SourceDecodeError, SourceError
from pbx_connector.sources.base import Source, SourceRow
from pbx_connector.sources.csv import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    MAX_COLUMNS,
    RECORD_LIMIT,
    CsvOptions,
    CsvSource,
    read_csv,
)

Row = tuple[int, dict[str, Any], str | None]


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows(path: Path, **options: str) -> list[Row]:
    return [(r.line, r.data, r.error) for r in CsvSource(path, CsvOptions(**options)).rows()]


def values(path: Path, **options: str) -> list[dict[str, Any]]:
    return [data for _, data, _ in rows(path, **options)]


def lines(path: Path, **options: str) -> list[int]:
    return [line for line, _, _ in rows(path, **options)]


def collect_until_error(path: Path, **options: str) -> tuple[list[SourceRow], SourceError]:
    got: list[SourceRow] = []
    with pytest.raises(SourceError) as info:
        for row in CsvSource(path, CsvOptions(**options)).rows():
            got.append(row)
    return got, info.value


# --- options -------------------------------------------------------------------------


def test_defaults() -> None:
    assert CsvOptions() == CsvOptions.from_settings({})
    assert CsvOptions() == CsvOptions("utf-8", ",", "auto", '"')


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"delimiter": "tab"}, CsvOptions(delimiter="\t")),
        ({"delimiter": "Semicolon"}, CsvOptions(delimiter=";")),
        ({"delimiter": "comma"}, CsvOptions(delimiter=",")),
        ({"delimiter": "PIPE"}, CsvOptions(delimiter="|")),
        ({"delimiter": "Auto"}, CsvOptions(delimiter="auto")),
        ({"delimiter": " "}, CsvOptions(delimiter=" ")),
        ({"delimiter": " : "}, CsvOptions(delimiter=":")),
        ({"line_separator": "CRLF"}, CsvOptions(line_separator="crlf")),
        ({"line_separator": "\n"}, CsvOptions(line_separator="lf")),
        ({"line_separator": "cr"}, CsvOptions(line_separator="cr")),
        ({"enclosure": "none"}, CsvOptions(enclosure="")),
        ({"enclosure": "'"}, CsvOptions(enclosure="'")),
        ({"encoding": "AUTO"}, CsvOptions(encoding="auto")),
        ({"encoding": "cp1252", "path": "/x.csv"}, CsvOptions(encoding="cp1252")),
    ],
)
def test_from_settings_normalises(settings: dict[str, str], expected: CsvOptions) -> None:
    assert CsvOptions.from_settings(settings) == expected


@pytest.mark.parametrize(
    ("setting", "value", "allowed"),
    [
        ("encoding", "klingon-8", "utf-8"),
        ("encoding", "base64", "utf-8"),
        ("encoding", "", "auto"),
        ("delimiter", ";;", "semicolon"),
        ("delimiter", "", "tab"),
        ("delimiter", "\n", "one character"),
        ("delimiter", '"', "enclosure"),
        ("line_separator", "windows", "crlf"),
        ("enclosure", "`", "none"),
        ("enclosure", '""', "none"),
    ],
)
def test_from_settings_rejects(setting: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        CsvOptions.from_settings({setting: value})
    assert info.value.field == setting
    assert allowed in str(info.value)
    assert setting.replace("_", " ") in str(info.value) or setting in str(info.value)


def test_options_validate_on_construction_too() -> None:
    with pytest.raises(ConfigError):
        CsvOptions(delimiter="ab")
    with pytest.raises(ConfigError):
        CsvOptions.from_settings({"delimiter": None})  # type: ignore[dict-item]
    # The delimiter may be a quote character when quoting is off.
    assert CsvOptions(delimiter='"', enclosure="none").delimiter == '"'


# --- header ----------------------------------------------------------------------------


def test_header_names_are_stripped_numbered_and_filled(tmp_path: Path) -> None:
    path = write(tmp_path, b" phone ,name,phone,,phone,field_4,\n1,2,3,4,5,6,7\n")
    assert CsvSource(path, CsvOptions()).fields() == [
        "phone",
        "name",
        "phone_2",
        "field_4_2",
        "phone_3",
        "field_4",
        "field_7",
    ]
    assert values(path)[0]["field_7"] == "7"


def test_numbering_skips_names_taken_literally(tmp_path: Path) -> None:
    path = write(tmp_path, b"phone,phone,phone_2\n1,2,3\n")
    assert values(path) == [{"phone": "1", "phone_3": "2", "phone_2": "3"}]


def test_values_are_kept_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b,c\n  x , 007 ," y "\n')
    assert values(path) == [{"a": "  x ", "b": " 007 ", "c": " y "}]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\r\n\n\r", b"\xef\xbb\xbf\n\n"])
def test_a_file_without_header_fails(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    with pytest.raises(SourceError, match="empty: no header row") as info:
        list(CsvSource(path, CsvOptions()).rows())
    assert info.value.source == str(path)
    with pytest.raises(SourceError, match="empty"):
        CsvSource(path, CsvOptions()).fields()


def test_header_only_gives_no_rows(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\r\n")
    assert CsvSource(path, CsvOptions()).fields() == ["a", "b"]
    assert rows(path) == []


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, b"\n\na,b\n1,2\n\n\r\n3,4\n\n")
    assert rows(path) == [(4, {"a": "1", "b": "2"}, None), (7, {"a": "3", "b": "4"}, None)]


def test_a_line_of_spaces_is_a_row(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\n \n")
    assert rows(path) == [(2, {"a": " "}, None)]


# --- ragged rows -------------------------------------------------------------------------


def test_ragged_rows_are_reported_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n\n7\n4,5,6\n")
    got = rows(path)
    assert [(line, data) for line, data, _ in got] == [
        (2, {"a": "1", "b": "2", "c": "3"}),
        (3, {}),
        (4, {}),
        (6, {}),
        (7, {"a": "4", "b": "5", "c": "6"}),
    ]
    errors = [error for _, _, error in got]
    assert errors[0] is None and errors[4] is None
    assert str(errors[1]).startswith("2 fields, but the header has 3")
    assert str(errors[2]).startswith("4 fields, but the header has 3")
    assert str(errors[3]).startswith("1 field, but the header has 3")


# --- enclosures --------------------------------------------------------------------------


def test_double_quote_enclosure(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        b'name,note,phone\n"Muster, Max","say ""hi""\nsecond line\r\nthird",1\n'
        b'plain,"",2\n"x"," a\rb ",3\n',
    )
    assert rows(path) == [
        (2, {"name": "Muster, Max", "note": 'say "hi"\nsecond line\r\nthird', "phone": "1"}, None),
        (5, {"name": "plain", "note": "", "phone": "2"}, None),
        (6, {"name": "x", "note": " a\rb ", "phone": "3"}, None),
    ]


def test_single_quote_enclosure(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\n'O''Brien, P.','say \"hi\"'\n\"x,y\n")
    assert values(path, enclosure="'") == [
        {"a": "O'Brien, P.", "b": 'say "hi"'},
        {"a": '"x', "b": "y"},
    ]


def test_no_enclosure_makes_quotes_data(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n"x",\'y\'\n"unclosed,5"" inch\n')
    assert values(path, enclosure="none") == [
        {"a": '"x"', "b": "'y'"},
        {"a": '"unclosed', "b": '5"" inch'},
    ]


def test_a_quote_inside_an_unquoted_value_is_data(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\n5\" display,it's\n")
    assert values(path) == [{"a": '5" display', "b": "it's"}]


def test_unterminated_enclosure_fails_with_the_line_it_opens_on(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,2\n3,"four\nfive\n6,7\n')
    got, error = collect_until_error(path)
    assert [r.line for r in got] == [2]
    assert error.line == 3
    assert "never closed" in str(error)
    assert str(path) in str(error)


def test_text_after_a_closing_enclosure_fails_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\n1,2\n"x\ny"z,2\n')
    got, error = collect_until_error(path)
    assert len(got) == 1
    assert error.line == 4
    assert "malformed CSV" in str(error)


def test_long_values_are_accepted_up_to_the_limit(tmp_path: Path) -> None:
    note = "x\r\n" * (FIELD_LIMIT // 3) + "x" * (FIELD_LIMIT % 3)
    assert len(note) == FIELD_LIMIT
    path = write(
        tmp_path, f'a,note\n1,"{note}"\n2,{note.replace(chr(13) + chr(10), "yy")}\n'.encode()
    )
    assert values(path) == [
        {"a": "1", "note": note},
        {"a": "2", "note": note.replace("\r\n", "yy")},
    ]


def test_a_value_over_the_limit_is_an_invalid_row(tmp_path: Path) -> None:
    long = "é" * (FIELD_LIMIT + 1)
    path = write(tmp_path, f'a,"no\tte"\n1,x\n"2\n",{long}\n3,y\n'.encode())
    got = rows(path)
    assert [(line, data) for line, data, _ in got] == [
        (2, {"a": "1", "no\tte": "x"}),
        (3, {}),
        (5, {"a": "3", "no\tte": "y"}),
    ]
    assert got[1][2] == (
        'the value of field "no\\tte" is 65,537 characters long; a value may have at most 65,536'
    )


@pytest.mark.parametrize("separator", ["auto", "crlf"])
def test_a_row_over_the_record_limit_fails_the_file(tmp_path: Path, separator: str) -> None:
    # Many short lines inside one enclosure: the limit is on the record, not the line.
    path = write(tmp_path, b'a,b\r\n1,2\r\n\r\n3,"' + b"x\r\n" * (RECORD_LIMIT // 3) + b'"\r\n')
    got, error = collect_until_error(path, line_separator=separator)
    assert [row.line for row in got] == [2]
    assert (error.source, error.line) == (str(path), 4)
    assert error.message == (
        'this row is longer than 1,048,576 characters (is the " enclosure of a value never closed?)'
    )


def test_a_row_exactly_at_the_record_limit_is_read(tmp_path: Path) -> None:
    value = "v" * (RECORD_LIMIT - len("1,\n"))
    path = write(tmp_path, f"a,b\n1,{value}\n2,x".encode())
    got = rows(path)
    assert [line for line, _, _ in got] == [2, 3]
    assert "65,536" in str(got[0][2])  # too long a value, but a record that fits
    assert got[1][1] == {"a": "2", "b": "x"}


def test_the_header_has_limits_too(tmp_path: Path) -> None:
    path = write(tmp_path, b"\n\n" + b"a" * (HEADER_LIMIT + 1) + b"\n1\n")
    with pytest.raises(SourceError) as info:
        CsvSource(path, CsvOptions()).fields()
    assert (info.value.line, info.value.message) == (
        3,
        "the header row is longer than 65,536 characters (is this a CSV file?)",
    )
    path = write(tmp_path, ",".join(["x"] * (MAX_COLUMNS + 1)).encode() + b"\n")
    with pytest.raises(SourceError) as info:
        CsvSource(path, CsvOptions()).fields()
    assert (info.value.line, info.value.message) == (
        1,
        "the header row has 1,001 columns; a CSV file may have at most 1,000",
    )
    path = write(tmp_path, ",".join(["x"] * MAX_COLUMNS).encode() + b"\n")
    fields = CsvSource(path, CsvOptions()).fields()
    assert fields[:3] == ["x", "x_2", "x_3"] and fields[-1] == "x_1000"


# --- delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "char"),
    [
        (",", ","),
        ("comma", ","),
        (";", ";"),
        ("semicolon", ";"),
        ("tab", "\t"),
        ("\t", "\t"),
        ("pipe", "|"),
        (":", ":"),
    ],
)
def test_explicit_delimiter(tmp_path: Path, option: str, char: str) -> None:
    d = char
    data = f'name{d}phone{d}note\r\nMax{d}+49 1{d}"a{d}b"\r\nEva{d}+49 2{d}", ; | :"\r\n'
    path = write(tmp_path, data.encode())
    reader = read_csv(io.BytesIO(data.encode()), CsvOptions(delimiter=option), "x")
    assert reader.delimiter == char
    assert values(path, delimiter=option) == [
        {"name": "Max", "phone": "+49 1", "note": f"a{d}b"},
        {"name": "Eva", "phone": "+49 2", "note": ", ; | :"},
    ]


@pytest.mark.parametrize("char", [",", ";", "\t", "|"])
def test_auto_delimiter(tmp_path: Path, char: str) -> None:
    d = char
    data = (
        f'"displayname"{d}"phone"{d}"givenname"{d}"surname"{d}"organisation"\n'
        f'"Muster, Max - pascom"{d}"+4999112345"{d}"Max"{d}"Muster"{d}"pascom; GmbH"\n'
        f'Eva Beispiel{d}+4999112346{d}Eva{d}Beispiel{d}"pascom {d} GmbH"\n'
    )
    path = write(tmp_path, data.encode())
    reader = read_csv(io.BytesIO(data.encode()), CsvOptions(delimiter="auto"), "x")
    assert reader.delimiter == char
    assert reader.fields == ["displayname", "phone", "givenname", "surname", "organisation"]
    got = values(path, delimiter="auto")
    assert got[0]["displayname"] == "Muster, Max - pascom"
    assert got[1]["organisation"] == f"pascom {d} GmbH"


def test_auto_delimiter_is_not_fooled_by_commas_in_values() -> None:
    data = "name;phone\n" + "".join(f"Muster, Max {i};+49 {i}\n" for i in range(20))
    reader = read_csv(io.BytesIO(data.encode()), CsvOptions(delimiter="auto"), "x")
    assert reader.delimiter == ";"


def test_auto_delimiter_of_a_single_column_is_comma(tmp_path: Path) -> None:
    path = write(tmp_path, b"phone\n+49 1\n+49 2\n")
    reader = read_csv(io.BytesIO(path.read_bytes()), CsvOptions(delimiter="auto"), "x")
    assert reader.delimiter == ","
    assert values(path, delimiter="auto") == [{"phone": "+49 1"}, {"phone": "+49 2"}]


# --- line separators -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\r\n1,2\r\n3,4\r\n",
        b"a,b\n1,2\n3,4\n",
        b"a,b\r1,2\r3,4\r",
        b"a,b\r\n1,2\n3,4\r",
        b"a,b\n1,2\r\n3,4",
    ],
    ids=["crlf", "lf", "cr", "mixed", "mixed-no-final-break"],
)
def test_auto_line_separator(tmp_path: Path, data: bytes) -> None:
    path = write(tmp_path, data)
    assert rows(path) == [(2, {"a": "1", "b": "2"}, None), (3, {"a": "3", "b": "4"}, None)]


def test_auto_counts_every_kind_of_break_inside_enclosures(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\r\n"1\r2\n3\r\n4",x\r\n5,y\n"6\n",z\r7,w\n')
    assert lines(path) == [2, 6, 7, 9]
    assert values(path)[0]["a"] == "1\r2\n3\r\n4"


@pytest.mark.parametrize(
    ("option", "data", "expected"),
    [
        # The stray break is data; lines count only the separator.
        (
            "crlf",
            b"a,b\r\n1,x\ny\r\n2,p\rq\r\n3,z",
            [(2, "1", "x\ny"), (3, "2", "p\rq"), (4, "3", "z")],
        ),
        (
            "lf",
            b"a,b\n1,x\ry\n2,crlf\r\n3,z",
            [(2, "1", "x\ry"), (3, "2", "crlf\r"), (4, "3", "z")],
        ),
        ("cr", b"a,b\r1,x\ny\r2,z\n", [(2, "1", "x\ny"), (3, "2", "z\n")]),
        # A separator inside an enclosure counts as a line, another break does not.
        ("crlf", b'a,b\r\n"1\r\n\n",x\r\n2,y\r\n', [(2, "1\r\n\n", "x"), (4, "2", "y")]),
        ("lf", b'a,b\n"1\n\r\n",x\n2,y\n', [(2, "1\n\r\n", "x"), (5, "2", "y")]),
        ("cr", b'a,b\r"1\r\n",x\r2,y\r', [(2, "1\r\n", "x"), (4, "2", "y")]),
        # A stray break right at the end of the file.
        ("crlf", b"a,b\r\n1,x\n", [(2, "1", "x\n")]),
        ("lf", b"a,b\n1,x\r", [(2, "1", "x\r")]),
    ],
)
def test_explicit_line_separator(
    tmp_path: Path, option: str, data: bytes, expected: list[tuple[int, str, str]]
) -> None:
    path = write(tmp_path, data)
    assert rows(path, line_separator=option) == [
        (line, {"a": a, "b": b}, None) for line, a, b in expected
    ]


def test_explicit_separator_allows_no_stray_break_after_an_enclosure(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\r\n1,"x"\n\r\n')
    _, error = collect_until_error(path, line_separator="crlf")
    assert error.line == 2
    assert "malformed CSV" in str(error)


def test_explicit_separator_with_a_stray_break_and_no_enclosure(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b\r\n"1,x\ny"\r\n2,z\r\n')
    assert rows(path, line_separator="crlf", enclosure="none") == [
        (2, {"a": '"1', "b": 'x\ny"'}, None),
        (3, {"a": "2", "b": "z"}, None),
    ]


def test_explicit_separator_keeps_the_escape_character_as_data(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b\r\n\ufdd0,"x\ufdd0\ufdd0"\r\n'.encode())
    assert values(path, line_separator="crlf") == [{"a": "\ufdd0", "b": "x\ufdd0\ufdd0"}]


def test_explicit_separator_blank_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\r\n\r\n1\r\n\n\r\n")
    assert rows(path, line_separator="crlf") == [(3, {"a": "1"}, None), (4, {"a": "\n"}, None)]


# --- encodings --------------------------------------------------------------------------------

TEXT = "name;ort;note\r\nJürgen Groß;Köln;Straße, Grüße\r\nÆsa Ørsted;Århus;€ 5\r\n"
EXPECTED = [
    {"name": "Jürgen Groß", "ort": "Köln", "note": "Straße, Grüße"},
    {"name": "Æsa Ørsted", "ort": "Århus", "note": "€ 5"},
]


@pytest.mark.parametrize(
    ("write_as", "option"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8"),
        ("utf-8-sig", "UTF8"),
        ("cp1252", "cp1252"),
        ("cp1252", "windows-1252"),
        ("utf-16", "utf-16"),
        ("utf-32", "utf-32"),
    ],
)
def test_encodings(tmp_path: Path, write_as: str, option: str) -> None:
    path = write(tmp_path, TEXT.encode(write_as))
    assert values(path, encoding=option, delimiter=";") == EXPECTED
    assert CsvSource(path, CsvOptions(encoding=option, delimiter=";")).fields()[0] == "name"
    with open(path, "rb") as file:
        assert read_csv(file, CsvOptions(encoding=option), "x").encoding == option


def test_a_bom_read_by_a_codec_that_keeps_it_is_not_part_of_the_first_name(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"))
    assert values(path, encoding="utf-16-le", delimiter=";") == EXPECTED


def test_latin_1(tmp_path: Path) -> None:
    text = "name;ort\r\nJürgen Groß;Köln\r\nÆsa;¤\x85\r\n"
    path = write(tmp_path, text.encode("latin-1"))
    assert values(path, encoding="latin-1", delimiter=";") == [
        {"name": "Jürgen Groß", "ort": "Köln"},
        {"name": "Æsa", "ort": "¤\x85"},
    ]


def test_utf_16_big_endian_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"))
    assert values(path, encoding="utf-16", delimiter=";") == EXPECTED


@pytest.mark.parametrize(
    ("data", "detected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("utf-8-sig"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("utf-32"), "utf-32"),
        (codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "utf-32"),
        (TEXT.encode("cp1252"), "cp1252"),
        # Latin-1 and cp1252 agree on every letter: cp1252 reads latin-1 files right.
        (TEXT.replace("€", "¤").encode("latin-1"), "cp1252"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "utf-32", "utf-32-be", "cp1252",
         "latin-1", "utf-16-le-no-bom"],
)  # fmt: skip
def test_auto_encoding(tmp_path: Path, data: bytes, detected: str) -> None:
    path = write(tmp_path, data)
    with open(path, "rb") as file:
        reader = read_csv(file, CsvOptions(encoding="auto", delimiter=";"), str(path))
        assert reader.encoding == detected
        got = [row.data for row in reader]
    expected = EXPECTED
    if "¤" in data.decode("latin-1"):
        expected = [EXPECTED[0], {**EXPECTED[1], "note": "¤ 5"}]
    assert got == expected
    assert values(path, encoding="auto", delimiter=";") == expected


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("имя,телефон\nИван Петров,1\nМария Иванова,2\nСергей Смирнов,3\n", "cp1251"),
        ("imię,miasto\nŁukasz Żółć,Łódź\nAgnieszka Wąsowska,Kraków\n", "cp1250"),
        ("名前,電話\n" + "".join(f"山田太郎{i},03-1234-{i}\n" for i in range(5)), "shift_jis"),
        ("nom,ville\nHélène Bérénice,Besançon\nFrançois Mauriac,Orléans\n", "cp1252"),
    ],
    ids=["russian-cp1251", "polish-cp1250", "japanese-shift_jis", "french-cp1252"],
)
def test_auto_encoding_beyond_western_europe(tmp_path: Path, text: str, encoding: str) -> None:
    path = write(tmp_path, text.encode(encoding))
    expected = list(csv.DictReader(io.StringIO(text)))
    assert values(path, encoding="auto") == expected


def test_auto_encoding_checks_the_whole_of_a_seekable_file(tmp_path: Path) -> None:
    # More than the 1 MiB sniffed up front, with the only umlaut at the very end.
    text = "name,phone\n" + "Max Muster,+49 991 12345\n" * 50_000 + "Jürgen,1\n"
    path = write(tmp_path, text.encode("cp1252"))
    assert path.stat().st_size > 1024 * 1024
    with open(path, "rb") as file:
        reader = read_csv(file, CsvOptions(encoding="auto"), str(path))
        assert reader.encoding == "cp1252"
        last = list(reader)[-1]
    assert (last.line, last.data) == (50_002, {"name": "Jürgen", "phone": "1"})


def test_auto_encoding_on_a_pipe_fails_loudly_past_the_sample(tmp_path: Path) -> None:
    text = "name,phone\n" + "Max Muster,+49 991 12345\n" * 50_000 + "Jürgen,1\n"
    path = write(tmp_path, text.encode("cp1252"))
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as cat:
        assert cat.stdout is not None and not cat.stdout.seekable()
        reader = read_csv(cast(BinaryIO, cat.stdout), CsvOptions(encoding="auto"), "pipe")
        assert reader.encoding == "utf-8"
        with pytest.raises(SourceDecodeError) as info:
            for _ in reader:
                pass
    assert info.value.line == 50_002
    assert "0xfc" in str(info.value) and "cp1252" in str(info.value)


def test_auto_encoding_reports_a_damaged_utf8_file(tmp_path: Path) -> None:
    text = "name,city\n" + "Jürgen,Köln\n" * 100
    path = write(tmp_path, text.encode() + b"M\xfcller,Bonn\n")
    _, error = collect_until_error(path, encoding="auto")
    assert isinstance(error, SourceDecodeError)
    assert error.line == 102
    assert "0xfc as utf-8" in str(error)


def test_auto_encoding_refuses_binary(tmp_path: Path) -> None:
    path = write(tmp_path, bytes(range(256)) * 20)
    with pytest.raises(SourceDecodeError, match="cannot detect the encoding"):
        list(CsvSource(path, CsvOptions(encoding="auto")).rows())


# --- decoding errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad_line", [1, 2, 5, 3000, 9000])
@pytest.mark.parametrize("separator", ["auto", "crlf"])
def test_decode_error_names_line_and_byte(tmp_path: Path, bad_line: int, separator: str) -> None:
    # Each row is 2 lines long (an enclosed line break), so the numbers differ from the
    # record count, and 9000 lines reach well past the first decoding chunk.
    text = "name,note\r\n" + 'Max,"a\r\nb"\r\n' * 5000
    physical = text.encode().split(b"\r\n")
    physical[bad_line - 1] = physical[bad_line - 1][:3] + b"\xe4" + physical[bad_line - 1][3:]
    path = write(tmp_path, b"\r\n".join(physical))
    got, error = collect_until_error(path, line_separator=separator)
    assert isinstance(error, SourceDecodeError)
    assert error.line == bad_line
    assert error.source == str(path)
    assert "cannot decode byte 0xe4 as utf-8" in str(error)
    assert "cp1252" in str(error)
    # Rows decoded in an earlier chunk may have come through; none from after the error.
    assert all(row.line < bad_line for row in got)


def test_decode_error_in_an_explicit_single_byte_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\n1,2\n3,\x81\n")
    _, error = collect_until_error(path, encoding="cp1252")
    assert isinstance(error, SourceDecodeError)
    assert error.line == 3
    assert "0x81 as cp1252" in str(error)


# --- the file ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    source = CsvSource(tmp_path / "nope.csv", CsvOptions())
    assert source.name == str(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="No such file or directory") as info:
        list(source.rows())
    assert info.value.source == str(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="No such file"):
        source.fields()


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        list(CsvSource(tmp_path, CsvOptions()).rows())
    assert str(info.value) == (
        f"{tmp_path}: cannot read a directory: the CSV path must name a regular file"
    )


def test_source_satisfies_the_protocol(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\n1\n")
    source: Source = CsvSource(str(path), CsvOptions())
    assert source.name == str(path)
    assert source.fields() == ["a"]
    assert [r.data for r in source.rows()] == [{"a": "1"}]


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_rows_closes_the_file_when_done_or_abandoned(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\n" + b"1\n" * 10)
    before = open_files()
    rows_ = CsvSource(path, CsvOptions()).rows()
    next(rows_)
    assert open_files() == before + 1
    rows_.close()  # type: ignore[attr-defined]
    assert open_files() == before
    list(CsvSource(path, CsvOptions()).rows())
    CsvSource(path, CsvOptions()).fields()
    assert open_files() == before


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    line = '"Muster, Max",+4999112345,Max,Muster,pascom,max@example.com,,,"+49 99 1"\r\n'
    path = write(tmp_path, ("a,b,c,d,e,f,g,h,i\r\n" + line * 20_000).encode())
    tracemalloc.start()
    try:
        count = sum(1 for _ in CsvSource(path, CsvOptions()).rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < path.stat().st_size / 4


def test_read_csv_leaves_the_callers_stream_open() -> None:
    stream = io.BytesIO(b"a\n1\n")
    reader = read_csv(stream, CsvOptions(), "upload")
    assert [r.data for r in reader] == [{"a": "1"}]
    assert not stream.closed
    with pytest.raises(RuntimeError, match="only once"):
        list(reader)
    with read_csv(stream := io.BytesIO(b"a\n"), CsvOptions(), "x") as reader:
        assert reader.fields == ["a"]
    assert not stream.closed


# --- round trips ----------------------------------------------------------------------------------

SPECIAL = [",", ";", "\t", "|", '"', "'", "\r", "\n", " ", "ä", "€", "😀", "\ufdd0", "\x00"]
ENCODINGS = [
    # (written with, encoding option)
    ("utf-8", "utf-8"),
    ("utf-8-sig", "utf-8"),
    ("utf-16", "utf-16"),
    ("cp1252", "cp1252"),
    ("utf-8", "auto"),
    ("utf-8-sig", "auto"),
    ("utf-16", "auto"),
]
TERMINATORS = {"\r\n": "crlf", "\n": "lf", "\r": "cr"}


def count_breaks(text: str, separator: str) -> int:
    if separator != "auto":
        return text.count({"crlf": "\r\n", "lf": "\n", "cr": "\r"}[separator])
    return text.count("\r") + text.count("\n") - text.count("\r\n")


@st.composite
def dialects(draw: st.DrawFn) -> dict[str, Any]:
    written_as, encoding = draw(st.sampled_from(ENCODINGS))
    terminator = draw(st.sampled_from(list(TERMINATORS)))
    return {
        "written_as": written_as,
        "encoding": encoding,
        "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
        "enclosure": draw(st.sampled_from(['"', "'", "none"])),
        "all": draw(st.booleans()),
        "terminator": terminator,
        "line_separator": draw(st.sampled_from(["auto", TERMINATORS[terminator]])),
    }


def excluded(dialect: dict[str, Any]) -> str:
    """Characters a value cannot hold in this dialect."""
    chars = ""
    if dialect["encoding"] == "auto":
        chars += "\x00"  # a NUL byte means "not UTF-8" to the detection, by design
    if dialect["enclosure"] == "none":
        # Without quoting, a value cannot hold the delimiter or anything that ends a line.
        ends = "\r\n" if dialect["line_separator"] == "auto" else dialect["terminator"]
        chars += dialect["delimiter"] + ends
    return chars


@functools.cache
def values_in(codec: str | None, exclude: str) -> st.SearchStrategy[str]:
    # Cached: building a character strategy is costly, and there are few dialect kinds.
    special = [
        c for c in SPECIAL if c not in exclude and (codec is None or c.encode(codec, "ignore"))
    ]
    chars = st.sampled_from(special) | st.characters(
        codec=codec, exclude_categories=["Cs"], exclude_characters=exclude
    )
    return st.text(chars, max_size=8)


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], list[list[str]]]:
    dialect = draw(dialects())
    codec = "cp1252" if dialect["written_as"] == "cp1252" else None
    text = values_in(codec, excluded(dialect))
    width = draw(st.integers(1, 4))
    header = draw(
        st.lists(text.map(str.strip).filter(bool), min_size=width, max_size=width, unique=True)
        # A file that starts with U+FEFF starts with a BOM, whatever the writer meant.
        .filter(lambda names: not names[0].startswith("\ufeff"))
    )
    row = st.lists(text, min_size=width, max_size=width)
    if dialect["enclosure"] == "none" and width == 1:
        # An empty single value is a blank line without quoting; csv.writer refuses it.
        row = row.filter(lambda r: r != [""])
    body = draw(st.lists(row, max_size=6))
    return dialect, header, body


def write_csv(dialect: dict[str, Any], table: list[list[str]]) -> list[str]:
    """The text of each row, written by the standard library's csv.writer."""
    quoting = csv.QUOTE_ALL if dialect["all"] else csv.QUOTE_MINIMAL
    terminator = dialect["terminator"]
    if dialect["line_separator"] == "auto" and any(
        char in value and char not in terminator
        for row in table
        for value in row
        for char in "\r\n"
    ):
        # Python < 3.12 leaves a break that is not part of the line terminator unquoted;
        # read with "auto" that is a line break, so quote everything to stay unambiguous.
        quoting = csv.QUOTE_ALL
    kwargs: dict[str, Any] = {"delimiter": dialect["delimiter"], "lineterminator": terminator}
    if dialect["enclosure"] == "none":
        kwargs.update(quoting=csv.QUOTE_NONE, quotechar=None)
    else:
        kwargs.update(quoting=quoting, quotechar=dialect["enclosure"])
    texts = []
    for row in table:
        out = io.StringIO(newline="")
        csv.writer(out, **kwargs).writerow(row)
        texts.append(out.getvalue())
    return texts


def read_back(dialect: dict[str, Any], data: bytes) -> tuple[list[str], list[SourceRow]]:
    options = CsvOptions(
        encoding=dialect["encoding"],
        delimiter=dialect["delimiter"],
        line_separator=dialect["line_separator"],
        enclosure=dialect["enclosure"],
    )
    reader = read_csv(io.BytesIO(data), options, "roundtrip")
    return reader.fields, list(reader)


@settings(max_examples=20000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_round_trip(case: tuple[dict[str, Any], list[str], list[list[str]]]) -> None:
    dialect, header, body = case
    texts = write_csv(dialect, [header, *body])
    data = "".join(texts).encode(dialect["written_as"])
    fields, got = read_back(dialect, data)
    assert fields == header
    assert [row.data for row in got] == [dict(zip(header, row, strict=True)) for row in body]
    assert all(row.error is None for row in got)
    starts = [
        1 + count_breaks("".join(texts[:i]), dialect["line_separator"])
        for i in range(1, len(texts))
    ]
    assert [row.line for row in got] == starts


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.text(st.sampled_from('ab,"\r\n'), max_size=5), min_size=2, max_size=2),
        max_size=6,
    ),
    st.data(),
)
def test_decode_error_points_at_the_row_it_is_in(
    table: list[list[str]], data: st.DataObject
) -> None:
    texts = write_csv(
        {
            "delimiter": ",",
            "enclosure": '"',
            "all": False,
            "terminator": "\r\n",
            "line_separator": "crlf",
        },
        [["a", "b"], *table],
    )
    bad = data.draw(st.integers(1, len(texts)), label="bad row")
    encoded = [text.encode() for text in texts]
    encoded[bad - 1] = b"\xff" + encoded[bad - 1]
    with pytest.raises(SourceDecodeError) as info:
        read_back(
            {"encoding": "utf-8", "delimiter": ",", "line_separator": "auto", "enclosure": '"'},
            b"".join(encoded),
        )
    assert info.value.line == 1 + count_breaks("".join(texts[: bad - 1]), "auto")


def test_rows_are_dicts_of_strings(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\n1,2\n")
    row = next(iter(CsvSource(path, CsvOptions()).rows()))
    assert isinstance(row, SourceRow)
    assert row.data == {"a": "1", "b": "2"}
