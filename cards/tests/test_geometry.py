"""Card maths from printers' templates."""

from __future__ import annotations

import pytest

from cards.render.geometry import SIZE_PRESETS, CardGeometry, mm_to_pt, mm_to_px, px_to_pt


def preset(key: str, bleed: float = 3.0, dpi: int = 300) -> CardGeometry:
    size = SIZE_PRESETS[key]
    return CardGeometry(size.width_mm, size.height_mm, bleed, dpi)


def test_unit_conversions():
    assert mm_to_px(25.4, 300) == 300
    assert mm_to_px(3.175, 300) == 38  # 1/8 in
    assert mm_to_pt(25.4) == pytest.approx(72.0)
    assert px_to_pt(300, 300) == pytest.approx(72.0)


def test_poker_with_bleed_is_69_by_94_mm_in_points():
    poker = preset("poker")
    assert poker.canvas_mm == (69.0, 94.0)
    width, height = poker.canvas_pt
    assert round(width, 1) == 195.6
    assert round(height, 1) == 266.5


@pytest.mark.parametrize(
    ("key", "bleed", "trim", "canvas"),
    [
        ("poker", 3.0, (744, 1039), (815, 1110)),
        ("tarot", 3.175, (825, 1425), (900, 1500)),
        ("tarot", 0.0, (825, 1425), (825, 1425)),
        ("bridge", 3.0, (675, 1050), (746, 1121)),
        ("square", 3.0, (827, 827), (898, 898)),
    ],
)
def test_preset_pixels_at_300_dpi(key, bleed, trim, canvas):
    geometry = preset(key, bleed)
    assert geometry.trim_px == trim
    assert geometry.canvas_px == canvas
    left, top, right, bottom = geometry.trim_box_px
    assert (right - left, bottom - top) == trim
    # The trim is centred: opposite bleeds differ by at most the odd pixel.
    sides = geometry.bleed_sides_px
    assert 0 <= sides[2] - sides[0] <= 1 and 0 <= sides[3] - sides[1] <= 1
    assert abs(sides[0] - bleed * 300 / 25.4) <= 1


def test_inch_poker_with_eighth_inch_bleed_is_825_by_1125():
    geometry = CardGeometry(63.5, 88.9, 3.175, 300)
    assert geometry.trim_px == (750, 1050)
    assert geometry.canvas_px == (825, 1125)
    assert geometry.bleed_sides_px == (37, 37, 38, 38)


def test_safe_box_is_inside_the_trim():
    geometry = CardGeometry(63, 88, 3, 300, safe_margin_mm=4)
    assert geometry.safe_box_px == (35 + 47, 35 + 47, 35 + 744 - 47, 35 + 1039 - 47)
    assert geometry.trim_box_px == (35, 35, 35 + 744, 35 + 1039)
