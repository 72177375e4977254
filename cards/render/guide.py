"""Procedural layout guides for standard playing cards, drawn at the generation size.

SD 1.5 miscounts pips, so a guide shows where they go: Ace one large pip, 2 to 10 in the
usual three columns with the lower half turned upside down, court cards a framed figure
area with a pip in two corners, Jokers a framed area with a star. The corners stay empty
for the indices the finished card adds. The result is an RGB image (black or red on white)
that phase 2 feeds to img2img as the init image or to ControlNet as the control image.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from PIL import Image, ImageDraw

from cards.render.fonts import font_get
from cards.render.text import RANKS, SUITS

RED = (200, 16, 46)
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)

SUIT_KEYS = {"♠": "spades", "♥": "hearts", "♦": "diamonds", "♣": "clubs"}
SUIT_SYMBOLS = {name: symbol for symbol, name in SUIT_KEYS.items()}
RED_SUITS = frozenset({"hearts", "diamonds"})
COURTS = frozenset({"J", "Q", "K"})

# Pip centres as (column, row) fractions of the pip area; rows below 0.5 are drawn inverted.
_L, _C, _R = 0.0, 0.5, 1.0
PIP_LAYOUTS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((_C, 0.5),),
    2: ((_C, 0.0), (_C, 1.0)),
    3: ((_C, 0.0), (_C, 0.5), (_C, 1.0)),
    4: ((_L, 0.0), (_R, 0.0), (_L, 1.0), (_R, 1.0)),
    5: ((_L, 0.0), (_R, 0.0), (_C, 0.5), (_L, 1.0), (_R, 1.0)),
    6: ((_L, 0.0), (_R, 0.0), (_L, 0.5), (_R, 0.5), (_L, 1.0), (_R, 1.0)),
    7: ((_L, 0.0), (_R, 0.0), (_C, 0.25), (_L, 0.5), (_R, 0.5), (_L, 1.0), (_R, 1.0)),
    8: ((_L, 0.0), (_R, 0.0), (_C, 0.25), (_L, 0.5), (_R, 0.5), (_C, 0.75), (_L, 1.0), (_R, 1.0)),
    9: ((_L, 0.0), (_R, 0.0), (_L, 1 / 3), (_R, 1 / 3), (_C, 0.5), (_L, 2 / 3), (_R, 2 / 3), (_L, 1.0), (_R, 1.0)),
    10: (
        (_L, 0.0),
        (_R, 0.0),
        (_C, 1 / 6),
        (_L, 1 / 3),
        (_R, 1 / 3),
        (_L, 2 / 3),
        (_R, 2 / 3),
        (_C, 5 / 6),
        (_L, 1.0),
        (_R, 1.0),
    ),
}

# Fractions of the card: the pip area's left/right and top/bottom edges (pip centres), pip size.
PIP_AREA_X = (0.3, 0.7)
PIP_AREA_Y = (0.19, 0.81)
PIP_SIZE = 0.15
ACE_SIZE = 0.42
FIGURE_BOX = (0.2, 0.12, 0.8, 0.88)


class GuideError(ValueError):
    pass


@dataclass(frozen=True)
class PlayingCard:
    rank: str  # "A", "2".."10", "J", "Q", "K" or "JOKER"
    suit: str  # "spades", "hearts", "diamonds", "clubs"; for a Joker "red" or "black"

    @property
    def pips(self) -> int | None:
        if self.rank == "A":
            return 1
        return int(self.rank) if self.rank.isdigit() else None

    @property
    def is_red(self) -> bool:
        return self.suit in RED_SUITS or self.suit == "red"


def playing_card_parse(rank_value: str, suit_value: str) -> PlayingCard:
    """Read a row's rank and suit ("Ace"/"A"/"1", "Ten"/"10", "Queen"; "Hearts"/"♥"/"H")."""
    raw = rank_value.strip()
    rank = RANKS.get(raw.lower(), raw.upper())
    if rank == "1":
        rank = "A"
    if rank not in {"A", *map(str, range(2, 11)), *COURTS, "JOKER"}:
        raise GuideError(f"{rank_value!r} is not a playing-card rank (Ace, 2-10, Jack, Queen, King, Joker).")
    suit_raw = suit_value.strip()
    if rank == "JOKER":
        return PlayingCard(rank, "red" if suit_raw.lower() in ("red", *RED_SUITS, "♥", "♦") else "black")
    suit = SUIT_KEYS.get(SUITS.get(suit_raw.lower(), suit_raw)) or {
        "s": "spades",
        "h": "hearts",
        "d": "diamonds",
        "c": "clubs",
    }.get(suit_raw.lower())
    if suit is None:
        raise GuideError(f"{suit_value!r} is not a suit (Spades, Hearts, Diamonds, Clubs).")
    return PlayingCard(rank, suit)


_glyphs: dict[tuple[str, int], Image.Image] = {}
_glyphs_lock = threading.Lock()


def _symbol_mask(symbol: str, size: int) -> Image.Image:
    """The symbol's glyph as an 'L' mask fitted into a ``size`` x ``size`` square, cached."""
    key = (symbol, size)
    with _glyphs_lock:
        cached = _glyphs.get(key)
    if cached is not None:
        return cached
    font = font_get("symbols2", size * 2)
    canvas = Image.new("L", (size * 3, size * 3), 0)
    ImageDraw.Draw(canvas).text((size * 1.5, size * 1.5), symbol, font=font, fill=255, anchor="mm")
    glyph = canvas.crop(canvas.getbbox())
    scale = size / max(glyph.size)
    glyph = glyph.resize(
        (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))), Image.Resampling.BICUBIC
    )
    with _glyphs_lock:
        _glyphs[key] = glyph
    return glyph


def _stamp(image: Image.Image, symbol: str, centre: tuple[float, float], size: int, color, *, inverted: bool) -> None:
    mask = _symbol_mask(symbol, size)
    if inverted:
        mask = mask.rotate(180)
    image.paste(color, (round(centre[0] - mask.width / 2), round(centre[1] - mask.height / 2)), mask)


def playing_card_guide(card: PlayingCard, size: tuple[int, int]) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, WHITE)
    color = RED if card.is_red else BLACK
    short = min(width, height)
    if card.pips is not None:
        symbol = SUIT_SYMBOLS[card.suit]
        if card.pips == 1:
            _stamp(image, symbol, (width / 2, height / 2), round(short * ACE_SIZE), color, inverted=False)
            return image
        left, right = (fraction * width for fraction in PIP_AREA_X)
        top, bottom = (fraction * height for fraction in PIP_AREA_Y)
        pip = round(short * PIP_SIZE)
        for column, row in PIP_LAYOUTS[card.pips]:
            centre = (left + column * (right - left), top + row * (bottom - top))
            _stamp(image, symbol, centre, pip, color, inverted=row > 0.5)
        return image
    box = tuple(round(fraction * extent) for fraction, extent in zip(FIGURE_BOX, size * 2, strict=True))
    line = max(2, round(short * 0.012))
    ImageDraw.Draw(image).rectangle(box, outline=color, width=line)
    corner = round(short * 0.09)
    inset = line + corner * 0.75
    if card.rank == "JOKER":
        _stamp(image, "★", (width / 2, height / 2), round(short * 0.3), color, inverted=False)
        return image
    symbol = SUIT_SYMBOLS[card.suit]
    _stamp(image, symbol, (box[0] + inset, box[1] + inset), corner, color, inverted=False)
    _stamp(image, symbol, (box[2] - inset, box[3] - inset), corner, color, inverted=True)
    return image
