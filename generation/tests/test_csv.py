from __future__ import annotations

import pytest

from generation.services.templates import csv_parse, csv_render
from imagineer.errors import ApplicationError


def parse_error(data, **kwargs) -> str:
    with pytest.raises(ApplicationError) as info:
        csv_parse(data, **kwargs)
    return info.value.message


def test_utf8_with_bom_quoted_commas_and_newlines():
    data = '\ufeffvalue,suit,visual_layout\nAce,Spades,"one big pip, centred"\nTwo,Hearts,"two pips:\ntop and bottom"\n'.encode()
    parsed = csv_parse(data)
    assert parsed.columns == ["value", "suit", "visual_layout"]
    assert parsed.rows == [
        {"value": "Ace", "suit": "Spades", "visual_layout": "one big pip, centred"},
        {"value": "Two", "suit": "Hearts", "visual_layout": "two pips:\ntop and bottom"},
    ]


def test_crlf_line_endings_and_blank_lines_are_accepted():
    parsed = csv_parse(b"sign,element\r\nAries,fire\r\n\r\nTaurus,earth\r\n")
    assert [row["sign"] for row in parsed.rows] == ["Aries", "Taurus"]


def test_text_input_round_trips_through_render():
    columns = ["a", "b"]
    rows = [{"a": 'quote "x"', "b": "comma, here"}, {"a": "line\nbreak", "b": ""}]
    assert csv_parse(csv_render(columns, rows)).rows == rows


def test_ragged_row_names_row_and_line():
    message = parse_error(b"sign,element\nAries,fire\nTaurus,earth,extra\n")
    assert "Row 2 (line 3) has 3 fields but the header has 2" in message


def test_empty_header():
    assert "header line is empty" in parse_error(b",,\nAries,fire,x\n")


def test_blank_column_name():
    assert "Column 2 of the header has no name" in parse_error(b"sign,,element\nA,B,C\n")


def test_duplicate_column_names():
    assert "'sign' appears twice" in parse_error(b"sign,element,sign\nA,B,C\n")


def test_column_name_that_cannot_be_a_placeholder():
    assert "cannot be used as a {placeholder}" in parse_error(b"sign name,element\nA,B\n")


def test_not_utf8():
    message = parse_error("sign,element\nGémeaux,air\n".encode("latin-1"))
    assert "not UTF-8" in message and "CSV UTF-8" in message


def test_empty_file_and_header_without_rows():
    assert "empty" in parse_error(b"  \n")
    assert "no rows" in parse_error(b"sign,element\n")


def test_too_many_rows(settings):
    settings.IMAGINEER_MAX_TEMPLATE_ROWS = 10_000
    data = "n\n" + "\n".join(str(i) for i in range(10_001))
    assert "more than 10,000 rows" in parse_error(data.encode())
    assert len(csv_parse(("n\n" + "\n".join(str(i) for i in range(10_000))).encode()).rows) == 10_000


def test_unterminated_quote_is_reported():
    message = parse_error(b'sign,element\nAries,"fire\n')
    assert "malformed" in message or "fields" in message


def test_error_is_attached_to_the_field_it_came_from():
    with pytest.raises(ApplicationError) as info:
        csv_parse(b"a,a\n1,2\n", field="csv_text")
    assert list(info.value.fields) == ["csv_text"]
