"""Bundled fonts, glyph coverage, text templates and drawing with fallback (no tofu)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, features

from cards.render.fonts import (
    DEFAULT_FALLBACKS,
    FONT_DIR,
    FONTS,
    coverage_missing,
    font_chain,
    font_codepoints,
    font_for_char,
    font_get,
)
from cards.render.text import (
    TextTemplateError,
    line_draw,
    line_layout,
    template_fill,
    template_placeholders,
    text_runs,
)

CHAIN = font_chain("serif", DEFAULT_FALLBACKS)
TITLES = {
    "japanese": "愚者の旅",
    "chinese": "塔罗牌 魔术师",
    "korean": "운명의 수레바퀴",
    "arabic": "عجلة الحظ",
    "greek": "Ο Τρελός",
    "suits": "♠ ♥ ♦ ♣",
    "zodiac": "♈ Aries",
}


def test_every_bundled_font_has_its_licence_beside_it():
    for font in FONTS.values():
        assert font.path.is_file(), font.path
        licence = FONT_DIR / f"{font.path.stem}.OFL.txt"
        assert "SIL OPEN FONT LICENSE Version 1.1" in licence.read_text(encoding="utf-8")


def test_fonts_come_from_the_repository_not_the_host():
    for key in FONTS:
        assert font_get(key, 20).path.startswith(str(FONT_DIR))


def test_pillow_shapes_complex_scripts_here():
    # Arabic is drawn joined only through libraqm (in Pillow's wheel, with the host's libfribidi).
    assert features.check("raqm")


@pytest.mark.parametrize("name", sorted(TITLES))
def test_the_chain_covers_non_latin_titles(name):
    assert coverage_missing(TITLES[name], CHAIN) == []


def test_coverage_names_what_no_font_draws():
    assert coverage_missing("Joker 🦄 and 😀😀 \u200d", CHAIN) == ["🦄", "😀"]
    # Without the CJK font in the chain, the kanji are missing.
    assert coverage_missing("愚者", ("serif", "sans")) == ["愚", "者"]


def test_runs_split_by_font_and_keep_spaces_drawable():
    runs = text_runs("Fool 愚者 عجلة ♠", CHAIN)
    assert [key for key, _ in runs] == ["serif", "cjk", "serif", "arabic", "symbols2"]
    for key, part in runs:
        assert all(ord(char) in font_codepoints(key) for char in part), (key, part)


def _glyph_ink(key: str, char: str, size: int = 64) -> np.ndarray:
    image = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(image).text((size // 2, size // 2), char, font=font_get(key, size), fill=255)
    return np.asarray(image) > 127


@pytest.mark.parametrize("name", sorted(TITLES))
def test_no_tofu_every_character_draws_a_real_glyph(name):
    """Each character is drawn by a font that has it; its ink differs from that font's missing-glyph box."""
    for char in TITLES[name].replace(" ", ""):
        key = font_for_char(char, CHAIN)
        assert key is not None, char
        tofu = _glyph_ink(key, "\U0010fffd")  # a private-use character no bundled font has
        ink = _glyph_ink(key, char)
        assert ink.any(), (name, char)
        assert (ink != tofu).mean() > 0.01, (name, char, key)


def test_a_mixed_title_renders_with_ink_for_every_run():
    layout = line_layout("The Fool 愚者 عجلة ♠", CHAIN, 48)
    image = Image.new("L", (int(layout.width) + 20, 100), 0)
    line_draw(image, layout, centre_x=image.width / 2, baseline_y=70, fill=255)
    ink = np.asarray(image) > 127
    x = 10.0
    for (_, part), width in zip(layout.runs, layout.widths, strict=True):
        assert part.isspace() or ink[:, int(x) : int(x + width)].any(), part
        x += width


def test_arabic_is_shaped_joined_not_isolated_letters():
    """With shaping the letters of a word join: narrower than the isolated forms side by side."""
    word = "عجلة"
    joined = font_get("arabic", 64).getlength(word)
    isolated = sum(font_get("arabic", 64).getlength(letter) for letter in word)
    assert joined < isolated * 0.9
    # Right to left: the first letter (ain) is drawn at the right end.
    image = Image.new("L", (400, 120), 0)
    ImageDraw.Draw(image).text((10, 20), word, font=font_get("arabic", 64), fill=255)
    first_alone = Image.new("L", (400, 120), 0)
    ImageDraw.Draw(first_alone).text((10, 20), "ع", font=font_get("arabic", 64), fill=255)
    columns = np.nonzero((np.asarray(image) > 127).any(axis=0))[0]
    assert columns.max() > np.nonzero((np.asarray(first_alone) > 127).any(axis=0))[0].max()


def test_template_placeholders_and_filters():
    assert [(p.column, p.filter) for p in template_placeholders("{value|rank}\n{suit|suit} {{x}}")] == [
        ("value", "rank"),
        ("suit", "suit"),
    ]
    row = {"value": "Ten", "suit": "Diamonds", "number": "21", "name": "the world"}
    assert template_fill("{value|rank}{suit|suit}", row) == "10♦"
    assert template_fill("{number|roman} {name|upper} {{x}}", row) == "XXI THE WORLD {x}"
    assert template_fill("{value|rank}", {"value": "Joker"}) == "JOKER"
    assert template_fill("{suit|suit}", {"suit": "Red"}) == ""
    assert template_fill("{number|roman}", {"number": "0"}) == "0"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{value|shout}", "Unknown filter 'shout'"),
        ("{value", "Unmatched '{'"),
        ("value}", "Unmatched '}'"),
        ("{}", "Empty placeholder"),
    ],
)
def test_bad_text_templates_are_refused(template, message):
    with pytest.raises(TextTemplateError, match=message):
        template_placeholders(template)
