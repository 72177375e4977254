"""Print geometry: millimetres, inches, pixels and PDF points in one place.

A card has a trim (its cut size), a bleed (art printed past the trim on every side, cut
off by the printer) and a safe margin (inside the trim; text stays within it). In pixels
the canvas (trim + bleed) and the trim are each rounded from millimetres, so the canvas
has the physical size printers ask for (poker 69 x 94 mm: 815 x 1110 px at 300 DPI;
2.75 x 3.75 in: 825 x 1125 px) and the trim is centred in it; where the difference is odd,
the right or bottom bleed is one pixel wider.
"""

from __future__ import annotations

from dataclasses import dataclass

MM_PER_INCH = 25.4
PT_PER_INCH = 72.0


def mm_to_px(mm: float, dpi: int) -> int:
    return round(mm * dpi / MM_PER_INCH)


def px_to_mm(px: float, dpi: int) -> float:
    return px * MM_PER_INCH / dpi


def mm_to_pt(mm: float) -> float:
    return mm * PT_PER_INCH / MM_PER_INCH


def px_to_pt(px: float, dpi: int) -> float:
    return px * PT_PER_INCH / dpi


@dataclass(frozen=True)
class SizePreset:
    key: str
    label: str
    width_mm: float
    height_mm: float


# Trim sizes as card printers' templates give them. Poker is MakePlayingCards' 63 x 88 mm
# (69 x 94 mm with a 3 mm bleed); bridge and tarot are their inch sizes.
SIZE_PRESETS: dict[str, SizePreset] = {
    preset.key: preset
    for preset in (
        SizePreset("poker", "Poker 63 x 88 mm (2.5 x 3.5 in)", 63.0, 88.0),
        SizePreset("bridge", "Bridge 2.25 x 3.5 in", 57.15, 88.9),
        SizePreset("tarot", "Tarot 2.75 x 4.75 in", 69.85, 120.65),
        SizePreset("square", "Square 70 x 70 mm", 70.0, 70.0),
    )
}

# Paper for print-and-play sheets, in millimetres.
PAPER_SIZES: dict[str, tuple[float, float]] = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}


@dataclass(frozen=True)
class CardGeometry:
    trim_width_mm: float
    trim_height_mm: float
    bleed_mm: float
    dpi: int
    safe_margin_mm: float = 0.0

    @property
    def trim_px(self) -> tuple[int, int]:
        return mm_to_px(self.trim_width_mm, self.dpi), mm_to_px(self.trim_height_mm, self.dpi)

    @property
    def canvas_px(self) -> tuple[int, int]:
        width, height = self.canvas_mm
        return mm_to_px(width, self.dpi), mm_to_px(height, self.dpi)

    @property
    def trim_box_px(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the trim inside the canvas."""
        canvas_w, canvas_h = self.canvas_px
        width, height = self.trim_px
        left, top = (canvas_w - width) // 2, (canvas_h - height) // 2
        return left, top, left + width, top + height

    @property
    def bleed_sides_px(self) -> tuple[int, int, int, int]:
        """The bleed on the (left, top, right, bottom) side, in pixels."""
        canvas_w, canvas_h = self.canvas_px
        left, top, right, bottom = self.trim_box_px
        return left, top, canvas_w - right, canvas_h - bottom

    @property
    def bleed_px(self) -> int:
        """The narrowest side's bleed."""
        return min(self.bleed_sides_px)

    @property
    def safe_px(self) -> int:
        return mm_to_px(self.safe_margin_mm, self.dpi)

    @property
    def safe_box_px(self) -> tuple[int, int, int, int]:
        left, top, right, bottom = self.trim_box_px
        safe = self.safe_px
        return left + safe, top + safe, right - safe, bottom - safe

    @property
    def canvas_mm(self) -> tuple[float, float]:
        return self.trim_width_mm + 2 * self.bleed_mm, self.trim_height_mm + 2 * self.bleed_mm

    @property
    def canvas_pt(self) -> tuple[float, float]:
        """The page of one card with its bleed, for printers that take a PDF page per card."""
        width, height = self.canvas_mm
        return mm_to_pt(width), mm_to_pt(height)

    def mm(self, value: float) -> int:
        return mm_to_px(value, self.dpi)
