"""Compositing a finished card, read back from the PNG bytes the finisher writes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cards.render.card import CardSpec, IndexStyle, TitleStyle, back_render, card_render, preview_render
from cards.render.fonts import DEFAULT_FALLBACKS, font_chain
from cards.render.geometry import SIZE_PRESETS, CardGeometry
from cards.render.imageio import fit_cover, png_bytes

POKER = CardGeometry(63.0, 88.0, 3.0, 300, safe_margin_mm=4.0)
RED = (200, 16, 46)
INDEX = IndexStyle(
    template="{value|rank}\n{suit|suit}",
    fonts=font_chain("serif-bold", DEFAULT_FALLBACKS),
    size_mm=6.0,
    color_column="suit",
    color_map={"Hearts": "#c8102e", "Diamonds": "#c8102e", "Red": "#c8102e"},
)


def noisy_art(size=(512, 720), seed=1) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    pixels = np.stack([x * 255 // size[0], y * 255 // size[1], (x + y) % 256], axis=-1)
    pixels = np.clip(pixels + rng.integers(-10, 10, pixels.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def read_back(card: Image.Image, dpi: int) -> Image.Image:
    image = Image.open(io.BytesIO(png_bytes(card, dpi=dpi)))
    image.load()
    return image


@pytest.mark.parametrize(
    ("key", "bleed", "dpi", "size"),
    [
        ("poker", 3.0, 300, (815, 1110)),
        ("poker", 3.0, 600, (1630, 2220)),
        ("tarot", 3.175, 300, (900, 1500)),
        ("bridge", 0.0, 300, (675, 1050)),
        ("square", 2.0, 150, (437, 437)),
    ],
)
def test_finished_cards_have_the_exact_pixel_size_and_dpi(key, bleed, dpi, size):
    preset = SIZE_PRESETS[key]
    geometry = CardGeometry(preset.width_mm, preset.height_mm, bleed, dpi, 3.0)
    spec = CardSpec(geometry=geometry, art_window_mm=(0, 0, preset.width_mm, preset.height_mm), index=INDEX)
    card = read_back(card_render(spec, noisy_art(), row={"value": "Ace", "suit": "Spades"}, title="Ace", index=1), dpi)
    assert card.size == size
    assert card.mode == "RGB"
    assert tuple(round(value) for value in card.info["dpi"]) == (dpi, dpi)


def test_mirror_bleed_continues_the_art_not_a_white_border():
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88))
    card = np.asarray(card_render(spec, noisy_art(), row={}, title="", index=1)).astype(int)
    left, top, right, bottom = POKER.trim_box_px
    for k in range(left):
        assert np.array_equal(card[top:bottom, left - 1 - k], card[top:bottom, left + k])
    for k in range(card.shape[1] - right):
        assert np.array_equal(card[top:bottom, right + k], card[top:bottom, right - 1 - k])
    for k in range(top):
        assert np.array_equal(card[top - 1 - k], card[top + k])
    for k in range(card.shape[0] - bottom):
        assert np.array_equal(card[bottom + k], card[bottom - 1 - k])
    bleed = np.concatenate([card[:top].reshape(-1, 3), card[bottom:].reshape(-1, 3)])
    assert (bleed.min(axis=1) > 245).mean() < 0.01


def test_cover_bleed_scales_the_art_over_the_whole_canvas():
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), bleed_fill="cover")
    art = noisy_art()
    card = card_render(spec, art, row={}, title="", index=1)
    assert np.array_equal(np.asarray(card), np.asarray(fit_cover(art, POKER.canvas_px)))


def test_an_inset_art_window_shows_the_background_around_it():
    spec = CardSpec(geometry=POKER, art_window_mm=(10, 10, 43, 50), background_color="#203040")
    card = np.asarray(card_render(spec, noisy_art(), row={}, title="", index=1))
    left, top, _, _ = POKER.trim_box_px
    assert card[5, 5].tolist() == [0x20, 0x30, 0x40]
    assert card[top + POKER.mm(60) + 5, left + POKER.mm(30)].tolist() == [0x20, 0x30, 0x40]
    window = card[top + POKER.mm(10) + 5 : top + POKER.mm(60) - 5, left + POKER.mm(10) + 5 : left + POKER.mm(53) - 5]
    assert (window != [0x20, 0x30, 0x40]).any(axis=2).mean() > 0.99


def test_the_frame_band_runs_from_the_bleed_edge_into_the_trim():
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), frame_color="#102030", frame_width_mm=2.0)
    card = np.asarray(card_render(spec, noisy_art(), row={}, title="", index=1))
    left, top, right, bottom = POKER.trim_box_px
    band = POKER.mm(2.0)
    frame = [0x10, 0x20, 0x30]
    assert card[0, 0].tolist() == frame
    assert card[top + band - 1, card.shape[1] // 2].tolist() == frame
    assert card[card.shape[0] // 2, left + band - 1].tolist() == frame
    assert card[card.shape[0] // 2, right - band].tolist() == frame
    assert card[bottom - band, card.shape[1] // 2].tolist() == frame
    assert card[card.shape[0] // 2, left + band + 2].tolist() != frame


@pytest.mark.parametrize("shape", ["trim", "canvas"])
def test_a_png_overlay_frames_the_card_and_reaches_into_the_bleed(tmp_path, shape):
    width, height = POKER.trim_px if shape == "trim" else POKER.canvas_px
    overlay = Image.new("RGBA", (width // 2, height // 2), (*RED, 255))
    overlay.paste((0, 0, 0, 0), (40, 40, width // 2 - 40, height // 2 - 40))
    overlay.save(tmp_path / "frame.png")
    art = noisy_art()
    plain = np.asarray(
        card_render(CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88)), art, row={}, title="", index=1)
    )
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), overlay_path=tmp_path / "frame.png")
    card = np.asarray(card_render(spec, art, row={}, title="", index=1, overlays={}))
    assert card.shape == plain.shape
    left, top, _, _ = POKER.trim_box_px
    for y, x in ((0, 0), (top, left), (card.shape[0] - 1, card.shape[1] - 1), (top + 20, card.shape[1] // 2)):
        assert card[y, x].tolist() == list(RED), (y, x)
    centre = (card.shape[0] // 2, card.shape[1] // 2)
    assert card[centre].tolist() == plain[centre].tolist()


def _corner_ink(card: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    region = card[top:bottom, left:right].reshape(-1, 3).astype(int)
    return region[region.min(axis=1) < 200]


@pytest.mark.parametrize(
    ("suit", "expected"), [("Hearts", RED), ("Diamonds", RED), ("Spades", (0, 0, 0)), ("Clubs", (0, 0, 0))]
)
def test_index_colours_follow_the_rule(suit, expected):
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), index=INDEX)
    white = Image.new("RGB", (512, 720), "white")
    card = np.asarray(card_render(spec, white, row={"value": "Queen", "suit": suit}, title="", index=1))
    left, top, right, bottom = POKER.safe_box_px
    corner = POKER.mm(12)
    top_left = _corner_ink(card, (left, top, left + corner, top + corner * 2))
    bottom_right = _corner_ink(card, (right - corner, bottom - corner * 2, right, bottom))
    for ink in (top_left, bottom_right):
        assert len(ink) > 300
        solid = ink[ink.min(axis=1) < 100] if expected == (0, 0, 0) else ink[ink[:, 1] < 100]
        assert np.abs(np.median(solid, axis=0) - expected).max() <= 12
    # The bottom-right index is the top-left one turned half a turn.
    tile = card[top : top + corner * 2, left : left + corner]
    turned = card[bottom - corner * 2 : bottom, right - corner : right][::-1, ::-1]
    assert (np.abs(tile.astype(int) - turned.astype(int)).max(axis=2) > 60).mean() < 0.05


def test_index_colour_can_come_from_a_column_of_colours():
    style = IndexStyle(
        template="{sign}", fonts=font_chain("sans-bold", DEFAULT_FALLBACKS), size_mm=6, color_column="ink"
    )
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), index=style)
    card = np.asarray(
        card_render(spec, Image.new("RGB", (64, 64), "white"), row={"sign": "♈", "ink": "#0000ff"}, title="", index=1)
    )
    left, top, _, _ = POKER.safe_box_px
    ink = _corner_ink(card, (left, top, left + POKER.mm(12), top + POKER.mm(12)))
    assert len(ink) > 100 and np.median(ink[ink[:, 2] > 200], axis=0)[:2].max() < 30


def _title_region(card: np.ndarray) -> np.ndarray:
    left, _, right, bottom = POKER.safe_box_px
    return card[bottom - POKER.mm(10) : bottom, left:right]


@pytest.mark.parametrize("title", ["愚者の旅", "운명의 수레바퀴", "عجلة الحظ", "塔罗牌"])
def test_non_latin_titles_render_without_tofu(title):
    spec = CardSpec(
        geometry=POKER,
        art_window_mm=(0, 0, 63, 88),
        title=TitleStyle(
            template="{title}", fonts=font_chain("serif", DEFAULT_FALLBACKS), size_mm=5, band_color="#ffffff"
        ),
    )
    white = Image.new("RGB", (64, 64), "white")
    card = _title_region(np.asarray(card_render(spec, white, row={}, title=title, index=1)))
    tofu = _title_region(
        np.asarray(card_render(spec, white, row={}, title="\U0010fffd" * len(title.replace(" ", "")), index=1))
    )
    ink = card.min(axis=2) < 128
    assert ink.sum() > 200
    # Missing-glyph boxes are hollow rectangles; real glyphs are not the same ink at all.
    assert (ink != (tofu.min(axis=2) < 128)).mean() > 0.02


def test_the_title_banner_sits_between_the_indices():
    spec = CardSpec(
        geometry=POKER,
        art_window_mm=(0, 0, 63, 88),
        index=INDEX,
        title=TitleStyle(
            template="{value} of {suit}",
            fonts=font_chain("serif", DEFAULT_FALLBACKS),
            size_mm=5,
            band_color="#00ff00",
            band_opacity=100,
        ),
    )
    card = np.asarray(card_render(spec, noisy_art(), row={"value": "King", "suit": "Hearts"}, title="", index=1))
    green = (card[:, :, 1] == 255) & (card[:, :, 0] == 0) & (card[:, :, 2] == 0)
    columns = np.nonzero(green.any(axis=0))[0]
    left, _, right, _ = POKER.safe_box_px
    assert columns.min() > left + POKER.mm(3) and columns.max() < right - POKER.mm(3)


def test_backs_have_bleed_too():
    spec = CardSpec(
        geometry=POKER, art_window_mm=(0, 0, 63, 88), back_color="#112233", frame_width_mm=1.5, frame_color="#ffcc00"
    )
    plain = np.asarray(back_render(spec))
    assert plain.shape[:2] == (POKER.canvas_px[1], POKER.canvas_px[0])
    assert plain[0, 0].tolist() == [0xFF, 0xCC, 0x00]
    assert plain[plain.shape[0] // 2, plain.shape[1] // 2].tolist() == [0x11, 0x22, 0x33]
    pictured = np.asarray(back_render(spec, noisy_art((300, 400))))
    left, top, _, _ = POKER.trim_box_px
    assert pictured.shape[:2] == plain.shape[:2]
    assert np.array_equal(pictured[top:, left - 1], pictured[top:, left])


def test_previews_are_the_trim_with_round_corners():
    spec = CardSpec(geometry=POKER, art_window_mm=(0, 0, 63, 88), corner_radius_mm=3)
    preview = preview_render(card_render(spec, noisy_art(), row={}, title="", index=1), spec, height=420)
    assert preview.height == 420 and preview.width == round(744 * 420 / 1039)
    alpha = np.asarray(preview)[:, :, 3]
    assert alpha[0, 0] == 0 and alpha[210, preview.width // 2] == 255
