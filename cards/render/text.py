"""Text templates over a row's columns, and lines of text drawn with a font fallback chain.

A text template is plain text with ``{column}`` placeholders, optionally filtered:
``{value|rank}`` gives "A" for "Ace" and "10" for "Ten", ``{suit|suit}`` gives "♠" for
"Spades", ``{number|roman}`` gives "XXI" for 21; ``upper``, ``lower`` and ``title`` change
case. ``{{`` and ``}}`` are literal braces; a newline separates the lines of an index.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL import Image, ImageDraw

from cards.render.fonts import font_codepoints, font_for_char, font_get, is_ignorable

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}|]*)(?:\|([^{}]*))?\}|[{}]")

RANKS = {
    "ace": "A",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "jack": "J",
    "knave": "J",
    "queen": "Q",
    "king": "K",
    "joker": "JOKER",
}
SUITS = {
    "spades": "♠",
    "spade": "♠",
    "hearts": "♥",
    "heart": "♥",
    "diamonds": "♦",
    "diamond": "♦",
    "clubs": "♣",
    "club": "♣",
}


def _roman(value: str) -> str:
    try:
        number = int(value.strip())
    except ValueError:
        return value
    if not 0 < number < 4000:
        return value
    numerals = (
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    )
    out = []
    for amount, numeral in numerals:
        count, number = divmod(number, amount)
        out.append(numeral * count)
    return "".join(out)


FILTERS: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
    "rank": lambda value: RANKS.get(value.strip().lower(), value),
    # Suits a deck does not know (a joker's "Red") get no symbol.
    "suit": lambda value: value if value.strip() in SUITS.values() else SUITS.get(value.strip().lower(), ""),
    "roman": _roman,
}


class TextTemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Placeholder:
    column: str
    filter: str | None


def template_placeholders(template: str) -> list[Placeholder]:
    """Every placeholder of a template, in order; raises TextTemplateError on bad syntax or filters."""
    found = []
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise TextTemplateError(f"Unmatched '{token}': write '{token * 2}' for a literal brace.")
        column, name = match.group(1).strip(), match.group(2)
        if not column:
            raise TextTemplateError("Empty placeholder '{}': name a column, e.g. {name}.")
        if name is not None:
            name = name.strip()
            if name not in FILTERS:
                raise TextTemplateError(
                    f"Unknown filter '{name}' in {{{column}|{name}}}; filters: {', '.join(FILTERS)}."
                )
        found.append(Placeholder(column, name))
    return found


def template_fill(template: str, values: Mapping[str, object]) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value = str(values.get(match.group(1).strip(), "") or "")
        name = match.group(2)
        return FILTERS[name.strip()](value) if name else value

    return unicodedata.normalize("NFC", _PLACEHOLDER.sub(replace, template))


def text_runs(text: str, chain: tuple[str, ...]) -> list[tuple[str, str]]:
    """Split text into (font key, text) runs: each character goes to the first font that has it.

    Spaces, joiners and combining marks stay with the run before them, so a word of one
    script is shaped as one piece. Characters no font has were refused at save time; if
    one slips through it is drawn with the first font (its missing-glyph box).
    """
    runs: list[list[str]] = []
    for char in text:
        key = None
        if runs and (is_ignorable(char) or unicodedata.category(char) in ("Mn", "Me")):
            previous = runs[-1][0]
            if ord(char) in font_codepoints(previous) or not char.isspace():
                key = previous
        key = key or font_for_char(char, chain) or chain[0]
        if runs and runs[-1][0] == key:
            runs[-1][1] += char
        else:
            runs.append([key, char])
    return [(key, part) for key, part in runs]


def _is_rtl(text: str) -> bool:
    for char in text:
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


@dataclass(frozen=True)
class LineLayout:
    runs: list[tuple[str, str]]
    widths: list[float]
    size: int
    ascent: int
    descent: int

    @property
    def width(self) -> float:
        return sum(self.widths)


def line_layout(text: str, chain: tuple[str, ...], size: int) -> LineLayout:
    """Measure a line. Runs keep their logical order; a line that starts right-to-left shows
    its runs right to left (libraqm shapes and orders the text inside each run)."""
    runs = text_runs(text, chain)
    if _is_rtl(text):
        runs.reverse()
    widths = [font_get(key, size).getlength(part) for key, part in runs]
    ascent, descent = font_get(chain[0], size).getmetrics()
    return LineLayout(runs, widths, size, ascent, descent)


def line_fit(text: str, chain: tuple[str, ...], size: int, max_width: float) -> LineLayout:
    """The line at ``size`` px, or smaller until it fits ``max_width``."""
    layout = line_layout(text, chain, size)
    if layout.width <= max_width or layout.width == 0:
        return layout
    smaller = max(1, int(size * max_width / layout.width))
    layout = line_layout(text, chain, smaller)
    while layout.width > max_width and smaller > 1:
        smaller -= 1
        layout = line_layout(text, chain, smaller)
    return layout


def line_draw(
    image: Image.Image, layout: LineLayout, *, centre_x: float, baseline_y: float, fill: tuple[int, ...]
) -> None:
    draw = ImageDraw.Draw(image)
    x = centre_x - layout.width / 2
    for (key, part), width in zip(layout.runs, layout.widths, strict=True):
        draw.text((x, baseline_y), part, font=font_get(key, layout.size), fill=fill, anchor="ls")
        x += width
