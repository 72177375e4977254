from __future__ import annotations

import pytest

from generation.services.templates import (
    prompt_construct,
    template_placeholders,
    template_row_prompt,
    template_validate,
)
from imagineer.errors import ApplicationError


def test_prompt_order_is_base_theme_row_style():
    prompt = template_row_prompt(
        base_prompt="a playing card",
        prompt_template="the {value} of {suit}",
        style_suffix="sharp focus",
        theme="gothic steampunk",
        row={"value": "Ace", "suit": "Spades"},
    )
    assert prompt == "a playing card, gothic steampunk, the Ace of Spades, sharp focus"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"base_prompt": "", "theme": "", "row_text": "Ace", "style_suffix": ""}, "Ace"),
        ({"base_prompt": "card,", "theme": " ", "row_text": ", Ace ,", "style_suffix": "hd"}, "card, Ace, hd"),
        ({"base_prompt": "a,, b", "theme": "x  y", "row_text": "c", "style_suffix": ""}, "a, b, x y, c"),
        ({"base_prompt": "", "theme": "", "row_text": "", "style_suffix": ""}, ""),
        ({"base_prompt": "line\nbreak", "theme": "", "row_text": "r", "style_suffix": ",,,"}, "line break, r"),
    ],
)
def test_empty_parts_skipped_and_separators_normalised(parts, expected):
    assert prompt_construct(**parts) == expected


def test_double_braces_are_literal():
    assert template_placeholders("{{not a column}} {sign}") == ["sign"]
    prompt = template_row_prompt(
        base_prompt="", prompt_template="{{glyph}} {sign}", style_suffix="", theme="", row={"sign": "Leo"}
    )
    assert prompt == "{glyph} Leo"


def test_placeholders_in_order_of_first_use_without_repeats():
    assert template_placeholders("{b} {a} {b}") == ["b", "a"]


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("{}", "empty {} placeholder"),
        ("{0}", "empty {} placeholder"),
        ("{sign.upper}", "not a plain column name"),
        ("{sign[0]}", "not a plain column name"),
        ("{sign:>10}", "format spec"),
        ("{sign!r}", "format spec or conversion"),
        ("{sign", "unbalanced braces"),
        ("sign}", "unbalanced braces"),
    ],
)
def test_bad_placeholders_are_refused(template, fragment):
    with pytest.raises(ApplicationError) as info:
        template_placeholders(template)
    assert fragment in info.value.message
    assert "prompt_template" in info.value.fields


def validate(**overrides):
    arguments = {
        "columns": ["sign", "element"],
        "rows": [{"sign": "Aries", "element": "fire"}],
        "base_prompt": "card",
        "prompt_template": "{sign} {element}",
        "style_suffix": "hd",
        "example_theme": "deco",
    }
    arguments.update(overrides)
    template_validate(**arguments)


def test_unknown_placeholder_names_it_and_the_columns():
    with pytest.raises(ApplicationError) as info:
        validate(prompt_template="{sign} of {suit}")
    assert info.value.message == "Unknown placeholder {suit}: the CSV columns are sign, element."


def test_empty_template_and_no_rows():
    with pytest.raises(ApplicationError, match="prompt template is empty"):
        validate(prompt_template="  ")
    with pytest.raises(ApplicationError, match="no rows"):
        validate(rows=[])


def test_over_long_prompt_names_the_row(settings):
    settings.IMAGINEER_MAX_PROMPT_CHARS = 2000
    rows = [{"sign": "Aries", "element": "fire"}, {"sign": "Taurus", "element": "x" * 2000}]
    with pytest.raises(ApplicationError) as info:
        validate(rows=rows)
    assert info.value.message.startswith("Row 2 (sign=Taurus): the constructed prompt is 2,")
    assert "the limit is 2,000" in info.value.message


def test_theme_counts_towards_the_limit():
    validate()
    with pytest.raises(ApplicationError, match="Row 1"):
        validate(theme="t" * 2000)
