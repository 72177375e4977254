"""Print-ready exports of finished cards (Django-free: they take the finished PNG files).

- ``export_zip``: every card as ``001-ace-of-spades.png`` plus ``back.png``.
- ``export_mpc``: MakePlayingCards' poker template, 816 x 1110 px per card with bleed.
- ``export_drivethru``: DriveThruCards' single PDF, one page per card at trim + bleed,
  fronts and backs alternating.
- ``export_pnp``: print-and-play sheets (A4 or US Letter) with crop marks on the trim lines
  and, for duplex, a backs page after each sheet, mirrored so each back lands behind its front.
- ``export_tts``: Tabletop Simulator deck sheets (10 x 7 grid) plus the back image.

PDF images are the finished PNGs embedded losslessly by img2pdf (the compressed PNG data is
copied, not re-encoded) and placed on pages with pikepdf; an image used on many pages (the
back) is stored once.
"""

from __future__ import annotations

import io
import re
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import img2pdf
import pikepdf
from PIL import Image

from cards.render.geometry import PAPER_SIZES, CardGeometry, mm_to_pt, px_to_pt
from cards.render.imageio import atomic_output, mirror_extend, png_bytes

ProgressCallback = Callable[[int, int], None]

MPC_SIZE = (816, 1110)
MPC_DPI = 300
MPC_TRIM_MM = (63.0, 88.0)
MPC_TOLERANCE_MM = 1.0
TTS_COLUMNS, TTS_ROWS = 10, 7
# TTS shows the last cell of a sheet for cards in hidden zones: it holds the back.
TTS_CARDS_PER_SHEET = TTS_COLUMNS * TTS_ROWS - 1
TTS_MAX_SIDE = 4096
PNP_MIN_MARGIN_MM = 6.0
CROP_MARK_GAP_MM = 1.0
CROP_MARK_LENGTH_MM = 4.0
CROP_MARK_WIDTH_PT = 0.25


class ExportError(ValueError):
    pass


@dataclass(frozen=True)
class ExportCard:
    position: int
    title: str
    path: Path


def file_slug(title: str, *, limit: int = 80) -> str:
    """A file-name slug that keeps every script's letters ("ace-of-spades", "日本語", "سلام").

    Letters, digits and combining marks stay; anything else becomes one hyphen.
    """
    text = unicodedata.normalize("NFKC", title).lower()
    kept = "".join(char if char.isalnum() or unicodedata.category(char) in ("Mn", "Mc") else "-" for char in text)
    slug = re.sub(r"-+", "-", kept).strip("-")[:limit].strip("-")
    return slug or "card"


def card_file_name(card: ExportCard) -> str:
    return f"{card.position:03d}-{file_slug(card.title)}.png"


def _report(progress: ProgressCallback | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def export_zip(cards: Sequence[ExportCard], back: Path, out: Path, *, progress: ProgressCallback | None = None) -> Path:
    with atomic_output(out) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for done, card in enumerate(cards, 1):
            archive.write(card.path, card_file_name(card))
            _report(progress, done, len(cards))
        archive.write(back, "back.png")
    return out


def mpc_check(geometry: CardGeometry) -> None:
    width, height = MPC_TRIM_MM
    if (
        abs(geometry.trim_width_mm - width) > MPC_TOLERANCE_MM
        or abs(geometry.trim_height_mm - height) > MPC_TOLERANCE_MM
    ):
        raise ExportError(
            f"MakePlayingCards' preset is for poker cards ({width:g} x {height:g} mm); this design is "
            f"{geometry.trim_width_mm:g} x {geometry.trim_height_mm:g} mm."
        )


def mpc_image(card: Image.Image, geometry: CardGeometry) -> Image.Image:
    """A finished card re-framed to MPC's 816 x 1110 px: MPC's box (its pixel size at the
    design's DPI) centred on the trim, the bleed cut or mirrored out to it, then scaled to
    MPC's 300 DPI; a 300 DPI design is only cropped, never resampled."""
    box_w, box_h = (round(value * geometry.dpi / MPC_DPI) for value in MPC_SIZE)
    left, top, right, bottom = geometry.trim_box_px
    box_left, box_top = left - (box_w - (right - left)) // 2, top - (box_h - (bottom - top)) // 2
    box = (box_left, box_top, box_left + box_w, box_top + box_h)
    extra = max(0, -box[0], -box[1], box[2] - card.width, box[3] - card.height)
    if extra:
        card = mirror_extend(card, extra, extra, extra, extra)
    framed = card.crop((box[0] + extra, box[1] + extra, box[2] + extra, box[3] + extra))
    return framed if framed.size == MPC_SIZE else framed.resize(MPC_SIZE, Image.Resampling.LANCZOS)


def _parallel_map(function: Callable, items: Sequence, workers: int | None) -> list:
    if workers == 1 or len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def export_mpc(
    cards: Sequence[ExportCard],
    back: Path,
    geometry: CardGeometry,
    out: Path,
    *,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Path:
    mpc_check(geometry)
    entries = [(card_file_name(card), card.path) for card in cards] + [("back.png", back)]

    def convert(entry: tuple[str, Path]) -> tuple[str, bytes]:
        with Image.open(entry[1]) as image:
            return entry[0], png_bytes(mpc_image(image.convert("RGB"), geometry), dpi=MPC_DPI)

    converted = _parallel_map(convert, entries, workers)
    with atomic_output(out) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for done, (name, data) in enumerate(converted, 1):
            archive.writestr(name, data)
            _report(progress, min(done, len(cards)), len(cards))
    return out


class PdfImageCache:
    """img2pdf's conversion of each PNG (one single-page PDF), made once and shared by every
    PDF of an export run: img2pdf decodes the image to read its metadata, which is most of its time."""

    def __init__(self) -> None:
        self._converted: dict[Path, bytes] = {}
        self._lock = threading.Lock()

    def prepare(self, paths: Sequence[Path], workers: int | None = None) -> None:
        todo = [path for path in dict.fromkeys(paths) if path not in self._converted]
        for path, data in zip(todo, _parallel_map(lambda path: img2pdf.convert(str(path)), todo, workers), strict=True):
            with self._lock:
                self._converted[path] = data

    def get(self, path: Path) -> bytes:
        with self._lock:
            data = self._converted.get(path)
        if data is None:
            self.prepare([path], 1)
            data = self._converted[path]
        return data


class _PdfImages:
    """Each distinct PNG embedded once (losslessly, through img2pdf) in one pikepdf document."""

    def __init__(self, pdf: pikepdf.Pdf, cache: PdfImageCache) -> None:
        self.pdf = pdf
        self.cache = cache
        self.xobjects: dict[Path, pikepdf.Object] = {}

    def get(self, path: Path) -> pikepdf.Object:
        xobject = self.xobjects.get(path)
        if xobject is None:
            single = pikepdf.open(io.BytesIO(self.cache.get(path)))
            resource = next(iter(single.pages[0].Resources.XObject.values()))
            xobject = self.xobjects[path] = self.pdf.copy_foreign(resource)
        return xobject


@dataclass(frozen=True)
class Placement:
    """An image drawn at (x, y, width, height) points, optionally clipped to a rectangle."""

    path: Path
    rect: tuple[float, float, float, float]
    clip: tuple[float, float, float, float] | None = None


def _page_add(pdf: pikepdf.Pdf, images: _PdfImages, size: tuple[float, float], placements, lines=()) -> None:
    resources: dict[str, pikepdf.Object] = {}
    names: dict[Path, str] = {}
    ops: list[str] = []
    for placement in placements:
        name = names.get(placement.path)
        if name is None:
            name = names[placement.path] = f"/Im{len(names)}"
            resources[name] = images.get(placement.path)
        x, y, width, height = placement.rect
        ops.append("q")
        if placement.clip is not None:
            ops.append("{:.4f} {:.4f} {:.4f} {:.4f} re W n".format(*placement.clip))
        ops.append(f"{width:.4f} 0 0 {height:.4f} {x:.4f} {y:.4f} cm {name} Do Q")
    if lines:
        ops.append(f"q 0 G {CROP_MARK_WIDTH_PT} w")
        ops.extend(f"{x0:.4f} {y0:.4f} m {x1:.4f} {y1:.4f} l S" for x0, y0, x1, y1 in lines)
        ops.append("Q")
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, round(size[0], 4), round(size[1], 4)],
        Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(resources)),
        Contents=pikepdf.Stream(pdf, "\n".join(ops).encode()),
    )
    pdf.pages.append(pikepdf.Page(page))


def _pdf_save(pdf: pikepdf.Pdf, out: Path, title: str) -> Path:
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:title"] = title
    with atomic_output(out) as handle:
        pdf.save(cast(BinaryIO, handle))
    return out


def export_drivethru(
    cards: Sequence[ExportCard],
    back: Path,
    geometry: CardGeometry,
    out: Path,
    *,
    progress: ProgressCallback | None = None,
    images: PdfImageCache | None = None,
    workers: int | None = None,
) -> Path:
    page = geometry.canvas_pt
    cache = images or PdfImageCache()
    cache.prepare([*(card.path for card in cards), back], workers)
    pdf = pikepdf.new()
    embedded = _PdfImages(pdf, cache)
    for done, card in enumerate(cards, 1):
        for path in (card.path, back):
            _page_add(pdf, embedded, page, [Placement(path, (0.0, 0.0, *page))])
        _report(progress, done, len(cards))
    return _pdf_save(pdf, out, "DriveThruCards: fronts and backs alternating")


@dataclass(frozen=True)
class SheetLayout:
    """Cards on a print-and-play sheet, in points from the page's bottom-left corner."""

    paper: tuple[float, float]
    columns: int
    rows: int
    trim: tuple[float, float]
    bleed: float  # the bleed kept around each card on the sheet
    origin: tuple[float, float]  # bottom-left of the grid's trim of the first column, last row

    @property
    def per_sheet(self) -> int:
        return self.columns * self.rows

    def trim_rect(self, slot: int) -> tuple[float, float, float, float]:
        """The trim rectangle of a slot (0 = top left, reading order)."""
        row, column = divmod(slot, self.columns)
        pitch_x, pitch_y = self.trim[0] + 2 * self.bleed, self.trim[1] + 2 * self.bleed
        x = self.origin[0] + column * pitch_x
        y = self.origin[1] + (self.rows - 1 - row) * pitch_y
        return x, y, self.trim[0], self.trim[1]

    def mirrored(self, rect: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """Where a rectangle lands on the other side of the sheet when it is flipped on its long edge."""
        x, y, width, height = rect
        return self.paper[0] - x - width, y, width, height


def pnp_layout(geometry: CardGeometry, paper: str) -> SheetLayout:
    """As many cards as fit inside the printable area (margins for the crop marks), each with
    as much of its bleed as the space between cards allows."""
    if paper not in PAPER_SIZES:
        raise ExportError(f"Unknown paper {paper!r}; choose one of {', '.join(PAPER_SIZES)}.")
    paper_w, paper_h = (mm_to_pt(value) for value in PAPER_SIZES[paper])
    trim = (px_to_pt(geometry.trim_px[0], geometry.dpi), px_to_pt(geometry.trim_px[1], geometry.dpi))
    margin = mm_to_pt(PNP_MIN_MARGIN_MM)
    usable_w, usable_h = paper_w - 2 * margin, paper_h - 2 * margin
    columns, rows = int(usable_w // trim[0]), int(usable_h // trim[1])
    if columns < 1 or rows < 1:
        raise ExportError(
            f"A {geometry.trim_width_mm:g} x {geometry.trim_height_mm:g} mm card does not fit on {paper}."
        )
    bleed = min(
        px_to_pt(geometry.bleed_px, geometry.dpi),
        (usable_w - columns * trim[0]) / (2 * columns),
        (usable_h - rows * trim[1]) / (2 * rows),
    )
    grid_w = columns * (trim[0] + 2 * bleed)
    grid_h = rows * (trim[1] + 2 * bleed)
    origin = ((paper_w - grid_w) / 2 + bleed, (paper_h - grid_h) / 2 + bleed)
    return SheetLayout((paper_w, paper_h), columns, rows, trim, bleed, origin)


def crop_marks(layout: SheetLayout, count: int) -> list[tuple[float, float, float, float]]:
    """Short lines in the margins on every trim line of the cards on a sheet, kept clear of the art."""
    gap, length = mm_to_pt(CROP_MARK_GAP_MM), mm_to_pt(CROP_MARK_LENGTH_MM)
    rects = [layout.trim_rect(slot) for slot in range(count)]
    grid_left = min(x for x, _, _, _ in rects) - layout.bleed
    grid_right = max(x + w for x, _, w, _ in rects) + layout.bleed
    grid_bottom = min(y for _, y, _, _ in rects) - layout.bleed
    grid_top = max(y + h for _, y, _, h in rects) + layout.bleed
    verticals = sorted({round(v, 4) for x, _, w, _ in rects for v in (x, x + w)})
    horizontals = sorted({round(v, 4) for _, y, _, h in rects for v in (y, y + h)})
    lines = []
    for x in verticals:
        lines.append((x, grid_top + gap, x, grid_top + gap + length))
        lines.append((x, grid_bottom - gap, x, grid_bottom - gap - length))
    for y in horizontals:
        lines.append((grid_left - gap, y, grid_left - gap - length, y))
        lines.append((grid_right + gap, y, grid_right + gap + length, y))
    return lines


def _placement(path: Path, trim_rect, layout: SheetLayout, geometry: CardGeometry) -> Placement:
    """The whole card image placed so its trim lies on ``trim_rect``, clipped to the sheet's bleed."""
    x, y, width, height = trim_rect
    # PDF's y axis points up: the image's bottom-left is the trim's less the left and bottom bleed.
    left, _, _, bottom = (px_to_pt(value, geometry.dpi) for value in geometry.bleed_sides_px)
    canvas_w, canvas_h = (px_to_pt(value, geometry.dpi) for value in geometry.canvas_px)
    clip = (x - layout.bleed, y - layout.bleed, width + 2 * layout.bleed, height + 2 * layout.bleed)
    return Placement(path, (x - left, y - bottom, canvas_w, canvas_h), clip)


def export_pnp(
    cards: Sequence[ExportCard],
    back: Path,
    geometry: CardGeometry,
    out: Path,
    *,
    paper: str = "a4",
    duplex: bool = True,
    progress: ProgressCallback | None = None,
    images: PdfImageCache | None = None,
    workers: int | None = None,
) -> Path:
    layout = pnp_layout(geometry, paper)
    cache = images or PdfImageCache()
    cache.prepare([*(card.path for card in cards), back], workers)
    pdf = pikepdf.new()
    embedded = _PdfImages(pdf, cache)
    done = 0
    for start in range(0, len(cards), layout.per_sheet):
        sheet = cards[start : start + layout.per_sheet]
        fronts = [_placement(card.path, layout.trim_rect(slot), layout, geometry) for slot, card in enumerate(sheet)]
        _page_add(pdf, embedded, layout.paper, fronts, crop_marks(layout, len(sheet)))
        if duplex:
            backs = [
                _placement(back, layout.mirrored(layout.trim_rect(slot)), layout, geometry)
                for slot in range(len(sheet))
            ]
            _page_add(pdf, embedded, layout.paper, backs)
        done += len(sheet)
        _report(progress, done, len(cards))
    return _pdf_save(pdf, out, f"Print and play ({paper})")


def tts_cell_size(geometry: CardGeometry) -> tuple[int, int]:
    """The largest cell of the card's trim aspect that keeps a 10 x 7 sheet within 4096 px."""
    trim_w, trim_h = geometry.trim_px
    width = min(TTS_MAX_SIDE // TTS_COLUMNS, int(TTS_MAX_SIDE // TTS_ROWS * trim_w / trim_h))
    return width, round(width * trim_h / trim_w)


def export_tts(
    cards: Sequence[ExportCard],
    back: Path,
    geometry: CardGeometry,
    out: Path,
    *,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> Path:
    """A zip of ``sheet-01.png``.. (each up to 69 cards in a 10 x 7 grid, the back in the last
    cell) and ``back.png``, the trim only: Tabletop Simulator shows cards uncut."""
    cell = tts_cell_size(geometry)
    trim_box = geometry.trim_box_px

    def cell_image(path: Path) -> Image.Image:
        with Image.open(path) as image:
            return image.convert("RGB").crop(trim_box).resize(cell, Image.Resampling.LANCZOS)

    back_cell = cell_image(back)
    cells = _parallel_map(cell_image, [card.path for card in cards], workers)
    sheets = []
    for start in range(0, max(1, len(cells)), TTS_CARDS_PER_SHEET):
        sheet = Image.new("RGB", (cell[0] * TTS_COLUMNS, cell[1] * TTS_ROWS), (0, 0, 0))
        for slot, image in enumerate(cells[start : start + TTS_CARDS_PER_SHEET]):
            row, column = divmod(slot, TTS_COLUMNS)
            sheet.paste(image, (column * cell[0], row * cell[1]))
        sheet.paste(back_cell, ((TTS_COLUMNS - 1) * cell[0], (TTS_ROWS - 1) * cell[1]))
        sheets.append(sheet)
        _report(progress, min(start + TTS_CARDS_PER_SHEET, len(cells)), len(cells))
    encoded = _parallel_map(lambda sheet: png_bytes(sheet, dpi=geometry.dpi), sheets, workers)
    with atomic_output(out) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, data in enumerate(encoded, 1):
            archive.writestr(f"sheet-{number:02d}.png", data)
        with Image.open(back) as image:
            archive.writestr("back.png", png_bytes(image.convert("RGB").crop(trim_box), dpi=geometry.dpi))
    return out
