"""Printer exports read back: file names, pixel sizes, PDF page sizes, crop marks, duplex, TTS grid."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import pikepdf
import pytest
from PIL import Image

from cards.render.card import CardSpec, IndexStyle, back_render, card_render
from cards.render.exports import (
    MPC_SIZE,
    TTS_COLUMNS,
    TTS_ROWS,
    ExportCard,
    ExportError,
    export_drivethru,
    export_mpc,
    export_pnp,
    export_tts,
    export_zip,
    file_slug,
    mpc_check,
    pnp_layout,
    tts_cell_size,
)
from cards.render.fonts import DEFAULT_FALLBACKS, font_chain
from cards.render.geometry import PAPER_SIZES, CardGeometry, mm_to_pt, px_to_pt
from cards.render.imageio import png_bytes

POKER = CardGeometry(63.0, 88.0, 3.0, 300, safe_margin_mm=4.0)
TITLES = ["Ace of Spades", "愚者", "عجلة الحظ", "Queen of Hearts", "Ten of Clubs", "Joker!", "운명", "Ω Omega"]


def deck(folder: Path, geometry: CardGeometry, count: int) -> tuple[list[ExportCard], Path]:
    """``count`` finished cards, each a flat colour of its own so that every page can be matched to its card."""
    spec = CardSpec(
        geometry=geometry,
        art_window_mm=(0, 0, geometry.trim_width_mm, geometry.trim_height_mm),
        index=IndexStyle("{index}", font_chain("sans-bold", DEFAULT_FALLBACKS), 5),
    )
    folder.mkdir(parents=True, exist_ok=True)
    cards = []
    for number in range(1, count + 1):
        art = Image.new("RGB", (64, 90), ((number * 40) % 256, (number * 90) % 256, 200))
        card = card_render(spec, art, row={}, title="", index=number)
        path = folder / f"card-{number}.png"
        path.write_bytes(png_bytes(card, dpi=geometry.dpi))
        cards.append(ExportCard(number, TITLES[(number - 1) % len(TITLES)], path))
    back = folder / "back.png"
    back.write_bytes(png_bytes(back_render(spec), dpi=geometry.dpi))
    return cards, back


@pytest.fixture(scope="module")
def poker_deck(tmp_path_factory) -> tuple[list[ExportCard], Path]:
    return deck(tmp_path_factory.mktemp("poker"), POKER, 12)


def test_file_slugs_keep_every_script():
    assert file_slug("Ace of Spades") == "ace-of-spades"
    assert file_slug("愚者") == "愚者"
    assert file_slug("عجلة الحظ") == "عجلة-الحظ"
    assert file_slug("Joker!") == "joker"
    assert file_slug("!!!") == "card"


def test_zip_names_cards_by_place_and_title(poker_deck, tmp_path):
    cards, back = poker_deck
    out = export_zip(cards[:8], back, tmp_path / "cards.zip")
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == [
            "001-ace-of-spades.png",
            "002-愚者.png",
            "003-عجلة-الحظ.png",
            "004-queen-of-hearts.png",
            "005-ten-of-clubs.png",
            "006-joker.png",
            "007-운명.png",
            "008-ω-omega.png",
            "back.png",
        ]
        # UTF-8 names are flagged as such, so unzip tools show them right.
        assert all(info.flag_bits & 0x800 for info in archive.infolist() if not info.filename.isascii())
        assert archive.read("001-ace-of-spades.png") == cards[0].path.read_bytes()


def test_makeplayingcards_cards_are_816_by_1110_at_300_dpi(poker_deck, tmp_path):
    cards, back = poker_deck
    out = export_mpc(cards[:3], back, POKER, tmp_path / "mpc.zip", workers=2)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist()[-1] == "back.png"
        for name in archive.namelist():
            image = Image.open(io.BytesIO(archive.read(name)))
            assert image.size == MPC_SIZE
            assert tuple(round(value) for value in image.info["dpi"]) == (300, 300)
        # The card's centre is the same colour as the finished card's.
        first = np.asarray(Image.open(io.BytesIO(archive.read("001-ace-of-spades.png"))).convert("RGB"))
        original = np.asarray(Image.open(cards[0].path).convert("RGB"))
        assert np.abs(first[555, 408].astype(int) - original[555, 407].astype(int)).max() <= 2


def test_makeplayingcards_refuses_sizes_it_does_not_print():
    with pytest.raises(ExportError, match="poker cards"):
        mpc_check(CardGeometry(69.85, 120.65, 3, 300))


def _placements(page: pikepdf.Page) -> list[tuple[Any, tuple[float, ...] | None, str]]:
    """Every image drawn on a page: (x, y, width, height), its clip rectangle and its XObject name."""
    found: list[tuple[Any, tuple[float, ...] | None, str]] = []
    clip: tuple[float, ...] | None = None
    matrix: tuple[float, ...] | None = None
    for instruction in pikepdf.parse_content_stream(page):
        operands, name = instruction.operands, str(instruction.operator)
        if name == "q":
            clip, matrix = None, None
        elif name == "re":
            clip = tuple(float(value) for value in operands)
        elif name == "cm":
            a, _, _, d, e, f = (float(value) for value in operands)
            matrix = (e, f, a, d)
        elif name == "Do":
            found.append((matrix, clip, str(operands[0])))
    return found


def _trim_of(rect: tuple[float, ...]) -> tuple[float, float, float, float]:
    """The trim rectangle of a placed card image (PDF coordinates, y up)."""
    x, y, _, _ = rect
    left, top, right, bottom = POKER.trim_box_px
    height = POKER.canvas_px[1]
    return (
        x + px_to_pt(left, 300),
        y + px_to_pt(height - bottom, 300),
        px_to_pt(right - left, 300),
        px_to_pt(bottom - top, 300),
    )


def _lines(page: pikepdf.Page) -> list[tuple[float, float, float, float]]:
    lines: list[tuple[float, float, float, float]] = []
    start = (0.0, 0.0)
    for instruction in pikepdf.parse_content_stream(page):
        operator, operands = str(instruction.operator), instruction.operands
        if operator == "m":
            start = (float(operands[0]), float(operands[1]))
        elif operator == "l":
            lines.append((*start, float(operands[0]), float(operands[1])))
    return lines


def _image_of(page: pikepdf.Page, name: str) -> np.ndarray:
    stream = cast(pikepdf.Stream, page.Resources.XObject[name])
    return np.asarray(pikepdf.PdfImage(stream).as_pil_image().convert("RGB"))


def test_drivethrucards_pdf_pages_are_trim_plus_bleed_fronts_and_backs_alternating(poker_deck, tmp_path):
    cards, back = poker_deck
    out = export_drivethru(cards[:5], back, POKER, tmp_path / "dtc.pdf")
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 10
        back_pixels = np.asarray(Image.open(back).convert("RGB"))
        back_objects = set()
        for number, page in enumerate(pdf.pages):
            width, height = (float(value) for value in page.MediaBox[2:])
            assert round(width, 1) == 195.6 and round(height, 1) == 266.5  # 69 x 94 mm
            [(rect, _, name)] = _placements(page)
            assert rect == pytest.approx((0.0, 0.0, width, height))
            pixels = _image_of(page, name)
            if number % 2:
                assert np.array_equal(pixels, back_pixels)
                back_objects.add(page.Resources.XObject[name].objgen)
            else:
                assert np.array_equal(pixels, np.asarray(Image.open(cards[number // 2].path).convert("RGB")))
        # The back is stored once, however many pages show it.
        assert len(back_objects) == 1


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_print_and_play_sheets_have_crop_marks_on_the_trim_lines(poker_deck, tmp_path, paper):
    cards, back = poker_deck
    out = export_pnp(cards, back, POKER, tmp_path / f"{paper}.pdf", paper=paper, duplex=False)
    layout = pnp_layout(POKER, paper)
    assert (layout.columns, layout.rows) == (3, 3)
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 2  # 12 cards: 9 + 3
        paper_w, paper_h = (mm_to_pt(value) for value in PAPER_SIZES[paper])
        for sheet, page in enumerate(pdf.pages):
            assert [float(value) for value in page.MediaBox[2:]] == pytest.approx([paper_w, paper_h], abs=0.01)
            placements = _placements(page)
            assert len(placements) == (9 if sheet == 0 else 3)
            trims_x, trims_y = set(), set()
            for (x, y, width, height), clip, _ in placements:
                # Each image is the whole card at its DPI, placed so that its trim box is the slot's trim.
                assert (width, height) == pytest.approx([px_to_pt(v, 300) for v in POKER.canvas_px])
                trim_x0, trim_y0, trim_w, trim_h = _trim_of((x, y, width, height))
                trim_x1, trim_y1 = trim_x0 + trim_w, trim_y0 + trim_h
                trims_x |= {round(trim_x0, 2), round(trim_x1, 2)}
                trims_y |= {round(trim_y0, 2), round(trim_y1, 2)}
                # The image is clipped to the trim plus the sheet's bleed, inside the paper's margins.
                cx, cy, cw, ch = clip
                assert cx == pytest.approx(trim_x0 - layout.bleed, abs=0.01)
                assert cw == pytest.approx(trim_x1 - trim_x0 + 2 * layout.bleed, abs=0.01)
                assert cx > mm_to_pt(5) and cx + cw < paper_w - mm_to_pt(5)
                assert cy > mm_to_pt(5) and cy + ch < paper_h - mm_to_pt(5)
            lines = _lines(page)
            verticals = {round(x0, 2) for x0, _, x1, _ in lines if x0 == x1}
            horizontals = {round(y0, 2) for _, y0, _, y1 in lines if y0 == y1}
            assert verticals == trims_x
            assert horizontals == trims_y
            # Marks stay in the margins, off the cards (and their bleed).
            clips = [clip for _, clip, _ in placements]
            grid_left, grid_bottom = min(c[0] for c in clips), min(c[1] for c in clips)
            grid_right, grid_top = max(c[0] + c[2] for c in clips), max(c[1] + c[3] for c in clips)
            for x0, y0, x1, y1 in lines:
                if x0 == x1:
                    assert min(y0, y1) > grid_top or max(y0, y1) < grid_bottom
                else:
                    assert min(x0, x1) > grid_right or max(x0, x1) < grid_left


def test_duplex_backs_line_up_behind_their_fronts(poker_deck, tmp_path):
    cards, back = poker_deck
    out = export_pnp(cards, back, POKER, tmp_path / "duplex.pdf", paper="a4", duplex=True)
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 4  # fronts, backs, fronts, backs
        paper_w = float(pdf.pages[0].MediaBox[2])
        back_pixels = np.asarray(Image.open(back).convert("RGB"))
        for sheet in (0, 1):
            fronts = _placements(pdf.pages[sheet * 2])
            backs = _placements(pdf.pages[sheet * 2 + 1])
            assert len(backs) == len(fronts)
            assert _lines(pdf.pages[sheet * 2 + 1]) == []
            for (front, front_clip, _), (rear, rear_clip, name) in zip(fronts, backs, strict=True):
                x, y, width, height = _trim_of(front)
                # Flipped on the long edge, the back of a card is its mirror image across the sheet.
                assert _trim_of(rear) == pytest.approx((paper_w - x - width, y, width, height), abs=0.01)
                cx, cy, cw, ch = front_clip
                assert rear_clip == pytest.approx((paper_w - cx - cw, cy, cw, ch), abs=0.01)
                assert np.array_equal(_image_of(pdf.pages[sheet * 2 + 1], name), back_pixels)
        # The partial second sheet: 3 cards in the top row; the grid is centred, so their backs
        # take the same three places, in mirrored order.
        fronts = [_trim_of(rect)[0] for rect, _, _ in _placements(pdf.pages[2])]
        backs = [_trim_of(rect)[0] for rect, _, _ in _placements(pdf.pages[3])]
        assert backs == pytest.approx(fronts[::-1], abs=0.01)


def test_tarot_on_letter_takes_fewer_cards_per_sheet():
    tarot = CardGeometry(69.85, 120.65, 3.0, 300)
    layout = pnp_layout(tarot, "letter")
    assert (layout.columns, layout.rows) == (2, 2)
    assert layout.bleed == pytest.approx(px_to_pt(POKER.bleed_px, 300))
    with pytest.raises(ExportError, match="does not fit"):
        pnp_layout(CardGeometry(300, 300, 3, 72), "a4")


def test_tabletop_simulator_sheet_is_a_10_by_7_grid_with_the_back_last(poker_deck, tmp_path):
    cards, back = poker_deck
    out = export_tts(cards, back, POKER, tmp_path / "tts.zip", workers=2)
    cell_w, cell_h = tts_cell_size(POKER)
    assert (cell_w, cell_h) == (409, 571)
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["sheet-01.png", "back.png"]
        sheet = np.asarray(Image.open(io.BytesIO(archive.read("sheet-01.png"))).convert("RGB"))
        assert sheet.shape[:2] == (cell_h * TTS_ROWS, cell_w * TTS_COLUMNS)
        for slot, card in enumerate(cards):
            row, column = divmod(slot, TTS_COLUMNS)
            cell = sheet[row * cell_h : (row + 1) * cell_h, column * cell_w : (column + 1) * cell_w]
            original = Image.open(card.path).convert("RGB").crop(POKER.trim_box_px).resize((cell_w, cell_h))
            assert np.abs(cell.astype(int) - np.asarray(original).astype(int)).mean() < 3
        # Empty cells stay black; the last cell holds the back (TTS's hidden card).
        assert sheet[cell_h * 3 + 10, cell_w * 5 + 10].tolist() == [0, 0, 0]
        last = sheet[-cell_h:, -cell_w:]
        back_cell = np.asarray(Image.open(back).convert("RGB").crop(POKER.trim_box_px).resize((cell_w, cell_h)))
        assert np.abs(last.astype(int) - back_cell.astype(int)).mean() < 3
        back_file = Image.open(io.BytesIO(archive.read("back.png")))
        assert back_file.size == POKER.trim_px


def test_tabletop_simulator_uses_a_second_sheet_past_69_cards(tmp_path):
    small = CardGeometry(63.0, 88.0, 1.0, 72)
    cards, back = deck(tmp_path / "big", small, 75)
    with zipfile.ZipFile(export_tts(cards, back, small, tmp_path / "tts.zip")) as archive:
        assert archive.namelist() == ["sheet-01.png", "sheet-02.png", "back.png"]
        cell = tts_cell_size(small)
        for name in ("sheet-01.png", "sheet-02.png"):
            assert Image.open(io.BytesIO(archive.read(name))).size == (cell[0] * 10, cell[1] * 7)


def test_makeplayingcards_crops_a_300_dpi_card_without_resampling_and_scales_others():
    from cards.render.exports import mpc_image

    card = Image.fromarray(np.random.default_rng(3).integers(0, 255, (1110, 815, 3), dtype=np.uint8))
    framed = np.asarray(mpc_image(card, POKER))
    assert framed.shape == (1110, 816, 3)
    # MPC's box is one pixel wider than the card: the card sits one pixel in, unchanged.
    assert np.array_equal(framed[:, 1:], np.asarray(card))
    sharp = CardGeometry(63.0, 88.0, 3.0, 600)
    assert mpc_image(Image.new("RGB", sharp.canvas_px), sharp).size == MPC_SIZE
