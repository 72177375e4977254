"""The bundled fonts, glyph coverage and font fallback.

Only the files in ``cards/fonts/`` are used. A design names a primary font and a fallback
chain; each character is drawn with the first font of the chain that has a glyph for it,
and text that no font of the chain covers is refused before anything is rendered.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont, features

FONT_DIR = Path(__file__).resolve().parent.parent / "fonts"


@dataclass(frozen=True)
class BundledFont:
    key: str
    label: str
    file: str

    @property
    def path(self) -> Path:
        return FONT_DIR / self.file


FONTS: dict[str, BundledFont] = {
    font.key: font
    for font in (
        BundledFont("sans", "Noto Sans", "NotoSans-Regular.ttf"),
        BundledFont("sans-bold", "Noto Sans Bold", "NotoSans-Bold.ttf"),
        BundledFont("serif", "Noto Serif", "NotoSerif-Regular.ttf"),
        BundledFont("serif-bold", "Noto Serif Bold", "NotoSerif-Bold.ttf"),
        BundledFont("arabic", "Noto Sans Arabic", "NotoSansArabic-Regular.ttf"),
        BundledFont("arabic-bold", "Noto Sans Arabic Bold", "NotoSansArabic-Bold.ttf"),
        BundledFont("cjk", "Noto Sans CJK (Japanese, Chinese, Korean)", "NotoSansCJK-Regular-Subset.otf"),
        BundledFont("symbols", "Noto Sans Symbols (zodiac, astrology)", "NotoSansSymbols-Regular.ttf"),
        BundledFont("symbols2", "Noto Sans Symbols 2 (card suits, stars)", "NotoSansSymbols2-Regular.ttf"),
    )
}
FONT_CHOICES = [(font.key, font.label) for font in FONTS.values()]
DEFAULT_FALLBACKS: tuple[str, ...] = ("sans", "symbols2", "symbols", "arabic", "cjk")

# Scripts that need shaping (joining, reordering): drawn correctly only with libraqm.
_SHAPED_RANGES = (
    (0x0590, 0x08FF),  # Hebrew, Arabic, Syriac, Thaana, N'Ko, Samaritan, Arabic extended
    (0x0900, 0x0DFF),  # Indic scripts
    (0xFB1D, 0xFDFF),  # Hebrew and Arabic presentation forms A
    (0xFE70, 0xFEFF),  # Arabic presentation forms B
)


def font_chain(primary: str, fallbacks: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The primary font then the fallbacks, without repeats, in order."""
    return tuple(dict.fromkeys([primary, *fallbacks]))


@cache
def font_codepoints(key: str) -> frozenset[int]:
    """The characters a bundled font has glyphs for (its cmap), read once per process."""
    font = TTFont(FONTS[key].path, lazy=True, fontNumber=0)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


def is_ignorable(char: str) -> bool:
    """Characters that need no glyph of their own: spaces, joiners, variation selectors."""
    if char.isspace():
        return True
    category = unicodedata.category(char)
    return category in ("Cc", "Cf") or 0xFE00 <= ord(char) <= 0xFE0F


def font_for_char(char: str, chain: tuple[str, ...]) -> str | None:
    codepoint = ord(char)
    return next((key for key in chain if codepoint in font_codepoints(key)), None)


def coverage_missing(text: str, chain: tuple[str, ...]) -> list[str]:
    """The distinct characters of ``text`` that no font of the chain can draw, in order."""
    missing: dict[str, None] = {}
    for char in text:
        if not is_ignorable(char) and font_for_char(char, chain) is None:
            missing[char] = None
    return list(missing)


def needs_shaping(text: str) -> bool:
    return any(first <= ord(char) <= last for char in text for first, last in _SHAPED_RANGES)


def shaping_available() -> bool:
    """Pillow's wheel carries libraqm and HarfBuzz; libraqm also needs the host's libfribidi."""
    return bool(features.check("raqm"))


def describe_chars(chars: list[str]) -> str:
    return ", ".join(f"{char!r} (U+{ord(char):04X} {unicodedata.name(char, 'unnamed')})" for char in chars)


_local = threading.local()


def font_get(key: str, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType font at a pixel size, cached per thread: a FreeType face is not thread-safe."""
    cache: dict[tuple[str, int], ImageFont.FreeTypeFont] | None = getattr(_local, "fonts", None)
    if cache is None:
        cache = _local.fonts = {}
    font = cache.get((key, size))
    if font is None:
        engine = ImageFont.Layout.RAQM if shaping_available() else ImageFont.Layout.BASIC
        font = cache[(key, size)] = ImageFont.truetype(str(FONTS[key].path), size=size, layout_engine=engine)
    return font
