"""A finished card: art fitted into the art window and carried into the bleed, then the frame,
corner indices and title banner, at the exact print size.

Django-free: a ``CardSpec`` carries everything a design says; the services build it from a
``CardDesign`` and the exports and benchmark use the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw

from cards.render.geometry import CardGeometry
from cards.render.imageio import fit_cover, image_open_checked, mirror_extend
from cards.render.text import line_draw, line_fit, template_fill

# Art-window edges this close to the trim (mm) count as touching it: the art runs into the bleed.
EDGE_TOLERANCE_MM = 0.05
# An index column is at most this share of the trim width; longer lines ("JOKER") shrink.
INDEX_MAX_WIDTH = 0.2


def color_parse(value: str) -> tuple[int, int, int]:
    """A CSS colour (#rgb, #rrggbb, a name such as 'crimson') as RGB; ValueError if unknown."""
    return ImageColor.getrgb(value.strip())[:3]


@dataclass(frozen=True)
class IndexStyle:
    template: str
    fonts: tuple[str, ...]
    size_mm: float
    color: str = "#000000"
    # The colour comes from this column: looked up in color_map, or the value itself a colour.
    color_column: str = ""
    color_map: Mapping[str, str] = field(default_factory=dict)

    def color_for(self, row: Mapping[str, object]) -> tuple[int, int, int]:
        if self.color_column:
            value = str(row.get(self.color_column, "") or "").strip()
            if self.color_map:
                lowered = {key.strip().lower(): colour for key, colour in self.color_map.items()}
                return color_parse(lowered.get(value.lower(), self.color))
            if value:
                return color_parse(value)
        return color_parse(self.color)


@dataclass(frozen=True)
class TitleStyle:
    template: str
    fonts: tuple[str, ...]
    size_mm: float
    color: str = "#000000"
    position: str = "bottom"  # or "top"
    band_color: str = ""  # empty: no band behind the title
    band_opacity: int = 85  # per cent


@dataclass(frozen=True)
class CardSpec:
    geometry: CardGeometry
    # (x, y, width, height) in mm from the trim's top-left corner.
    art_window_mm: tuple[float, float, float, float]
    bleed_fill: str = "mirror"  # "mirror": reflect the fitted art; "cover": scale art over the bleed
    background_color: str = "#ffffff"
    frame_color: str = "#000000"
    frame_width_mm: float = 0.0
    overlay_path: Path | None = None
    index: IndexStyle | None = None
    title: TitleStyle | None = None
    back_color: str = "#1f2a44"
    back_path: Path | None = None
    corner_radius_mm: float = 3.0


def card_values(row: Mapping[str, object], *, title: str, index: int) -> dict[str, object]:
    """What a text template can name: the row's columns, plus ``title`` and ``index`` unless
    the row has columns of those names."""
    return {"title": title, "index": index, **row}


def _art_boxes(spec: CardSpec) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """The art window and the window grown into the bleed where it touches the trim, in canvas px."""
    geometry = spec.geometry
    x, y, width, height = spec.art_window_mm
    trim_left, trim_top, _, _ = geometry.trim_box_px
    left, top = trim_left + geometry.mm(x), trim_top + geometry.mm(y)
    right, bottom = trim_left + geometry.mm(x + width), trim_top + geometry.mm(y + height)
    canvas_w, canvas_h = geometry.canvas_px
    grown = (
        0 if x <= EDGE_TOLERANCE_MM else left,
        0 if y <= EDGE_TOLERANCE_MM else top,
        canvas_w if x + width >= geometry.trim_width_mm - EDGE_TOLERANCE_MM else right,
        canvas_h if y + height >= geometry.trim_height_mm - EDGE_TOLERANCE_MM else bottom,
    )
    return (left, top, right, bottom), grown


def _art_place(canvas: Image.Image, spec: CardSpec, art: Image.Image) -> None:
    window, grown = _art_boxes(spec)
    art = art.convert("RGB")
    if spec.bleed_fill == "cover":
        fitted = fit_cover(art, (grown[2] - grown[0], grown[3] - grown[1]))
    else:
        fitted = fit_cover(art, (window[2] - window[0], window[3] - window[1]))
        fitted = mirror_extend(
            fitted, window[0] - grown[0], window[1] - grown[1], grown[2] - window[2], grown[3] - window[3]
        )
    canvas.paste(fitted, grown[:2])


def _frame_band_draw(canvas: Image.Image, geometry: CardGeometry, color: str, width_mm: float) -> None:
    """A band from the canvas edge (bleed included) to ``width_mm`` inside the trim, so a cut
    a little off the line still shows frame, never art or paper."""
    if width_mm <= 0:
        return
    width = geometry.mm(width_mm)
    left, top, right, bottom = geometry.trim_box_px
    canvas_w, canvas_h = geometry.canvas_px
    colour = color_parse(color)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas_w, top + width - 1), fill=colour)
    draw.rectangle((0, bottom - width, canvas_w, canvas_h), fill=colour)
    draw.rectangle((0, 0, left + width - 1, canvas_h), fill=colour)
    draw.rectangle((right - width, 0, canvas_w, canvas_h), fill=colour)


def _frame_draw(canvas: Image.Image, spec: CardSpec, overlays: dict[Path, Image.Image]) -> Image.Image:
    if spec.overlay_path is None:
        _frame_band_draw(canvas, spec.geometry, spec.frame_color, spec.frame_width_mm)
        return canvas
    overlay = overlays.get(spec.overlay_path)
    if overlay is None:
        overlay = overlays[spec.overlay_path] = overlay_fit(image_open_checked(spec.overlay_path), spec.geometry)
    canvas = canvas.convert("RGBA")
    canvas.alpha_composite(overlay)
    return canvas.convert("RGB")


def overlay_fit(overlay: Image.Image, geometry: CardGeometry) -> Image.Image:
    """An RGBA overlay the size of the canvas: a canvas-aspect overlay is scaled to it, a
    trim-aspect one is scaled to the trim and mirrored into the bleed."""
    overlay = overlay.convert("RGBA")
    canvas_w, canvas_h = geometry.canvas_px
    trim_w, trim_h = geometry.trim_px
    if abs(overlay.width / overlay.height - canvas_w / canvas_h) <= abs(
        overlay.width / overlay.height - trim_w / trim_h
    ):
        return overlay.resize((canvas_w, canvas_h), Image.Resampling.LANCZOS)
    return mirror_extend(overlay.resize((trim_w, trim_h), Image.Resampling.LANCZOS), *geometry.bleed_sides_px)


def _index_tile(spec: CardSpec, style: IndexStyle, values: Mapping[str, object]) -> Image.Image | None:
    lines = [line for line in template_fill(style.template, values).split("\n") if line.strip()]
    if not lines:
        return None
    geometry = spec.geometry
    size = max(1, geometry.mm(style.size_mm))
    max_width = geometry.trim_px[0] * INDEX_MAX_WIDTH
    layouts = [line_fit(line, style.fonts, size, max_width) for line in lines]
    width = int(max(layout.width for layout in layouts)) + 2
    heights = [layout.ascent + layout.descent for layout in layouts]
    tile = Image.new("RGBA", (width, sum(heights)), (0, 0, 0, 0))
    fill = (*style.color_for(values), 255)
    baseline = 0
    for layout, height in zip(layouts, heights, strict=True):
        line_draw(tile, layout, centre_x=width / 2, baseline_y=baseline + layout.ascent, fill=fill)
        baseline += height
    return tile.crop(tile.getbbox() or (0, 0, 1, 1))


def _indices_draw(layer: Image.Image, spec: CardSpec, values: Mapping[str, object]) -> int:
    """Draw the corner indices; returns the width of the index column (0 without indices)."""
    if spec.index is None:
        return 0
    tile = _index_tile(spec, spec.index, values)
    if tile is None:
        return 0
    left, top, right, bottom = spec.geometry.safe_box_px
    layer.alpha_composite(tile, (left, top))
    # The bottom-right index is the top-left one turned half a turn, as on a real card.
    layer.alpha_composite(tile.rotate(180), (right - tile.width, bottom - tile.height))
    return tile.width


def _title_draw(layer: Image.Image, spec: CardSpec, values: Mapping[str, object], *, index_width: int) -> None:
    """The title banner, between the index columns so it never covers an index."""
    style = spec.title
    if style is None:
        return
    text = template_fill(style.template, values).replace("\n", " ").strip()
    if not text:
        return
    geometry = spec.geometry
    left, top, right, bottom = geometry.safe_box_px
    size = max(1, geometry.mm(style.size_mm))
    padding = max(1, size // 4)
    if index_width:
        left, right = left + index_width + padding, right - index_width - padding
    layout = line_fit(text, style.fonts, size, right - left - 2 * padding)
    band_height = layout.ascent + layout.descent + 2 * padding
    band_top = top if style.position == "top" else bottom - band_height
    if style.band_color:
        alpha = round(255 * style.band_opacity / 100)
        ImageDraw.Draw(layer).rectangle(
            (left, band_top, right - 1, band_top + band_height - 1), fill=(*color_parse(style.band_color), alpha)
        )
    line_draw(
        layer,
        layout,
        centre_x=(left + right) / 2,
        baseline_y=band_top + padding + layout.ascent,
        fill=(*color_parse(style.color), 255),
    )


def card_render(
    spec: CardSpec,
    art: Image.Image,
    *,
    row: Mapping[str, object],
    title: str,
    index: int,
    overlays: dict[Path, Image.Image] | None = None,
) -> Image.Image:
    """The finished card front, RGB, ``spec.geometry.canvas_px`` in size (trim + bleed).

    ``overlays`` caches the design's decoded overlay between the cards of one deck.
    """
    geometry = spec.geometry
    canvas = Image.new("RGB", geometry.canvas_px, color_parse(spec.background_color))
    _art_place(canvas, spec, art)
    canvas = _frame_draw(canvas, spec, overlays if overlays is not None else {})
    if spec.index is None and spec.title is None:
        return canvas
    values = card_values(row, title=title, index=index)
    layer = Image.new("RGBA", geometry.canvas_px, (0, 0, 0, 0))
    index_width = _indices_draw(layer, spec, values)
    _title_draw(layer, spec, values, index_width=index_width)
    canvas = canvas.convert("RGBA")
    canvas.alpha_composite(layer)
    return canvas.convert("RGB")


def back_render(spec: CardSpec, image: Image.Image | None = None) -> Image.Image:
    """The card back at the front's size. An image fills the trim and is mirrored into the
    bleed; with none, the back is the design's back colour inside its frame."""
    geometry = spec.geometry
    if image is None and spec.back_path is not None:
        image = image_open_checked(spec.back_path)
    if image is None:
        # A plain back keeps the front's frame band but not its overlay, which belongs to the face.
        canvas = Image.new("RGB", geometry.canvas_px, color_parse(spec.back_color))
        _frame_band_draw(canvas, geometry, spec.frame_color, spec.frame_width_mm)
        return canvas
    fitted = fit_cover(image.convert("RGB"), geometry.trim_px)
    return mirror_extend(fitted, *geometry.bleed_sides_px)


def preview_render(card: Image.Image, spec: CardSpec, *, height: int = 420) -> Image.Image:
    """How the card looks once cut: the trim only, rounded corners, scaled for a page (RGBA)."""
    trimmed = card.crop(spec.geometry.trim_box_px)
    scale = height / trimmed.height
    preview = trimmed.resize((max(1, round(trimmed.width * scale)), height), Image.Resampling.LANCZOS)
    radius = round(spec.geometry.mm(spec.corner_radius_mm) * scale)
    mask = Image.new("L", preview.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, preview.width - 1, preview.height - 1), radius=radius, fill=255)
    preview = preview.convert("RGBA")
    preview.putalpha(mask)
    return preview
