"""Card designs: validation (every bad input refused at save, naming the field), create,
update, copy, and the Django-free ``CardSpec`` the renderer takes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.fields.files import FieldFile

from albums.services.files import media_path
from cards.models import BLEED_MAX_MM, CUSTOM_SIZE_MAX_MM, CUSTOM_SIZE_MIN_MM, DPI_MAX, DPI_MIN, CardDesign
from cards.render.card import CardSpec, IndexStyle, TitleStyle, color_parse
from cards.render.fonts import (
    FONTS,
    coverage_missing,
    describe_chars,
    font_chain,
    needs_shaping,
    shaping_available,
)
from cards.render.geometry import SIZE_PRESETS, CardGeometry
from cards.render.imageio import ImageInputError, has_alpha, image_open_checked
from cards.render.text import TextTemplateError, template_fill, template_placeholders
from cards.services.sources import row_title
from generation.models import BatchTemplate
from imagineer.errors import ApplicationError

# A finished card larger than this (trim + bleed at the DPI) is refused: memory and file size.
MAX_CARD_PIXELS = 80_000_000
# An overlay's aspect may differ this much (relative) from the trim's or the canvas's.
OVERLAY_ASPECT_TOLERANCE = 0.01
PSEUDO_COLUMNS = ("title", "index")
PLAYING_CARD_RED = "#c8102e"

EDITABLE_FIELDS = (
    "name",
    "size_preset",
    "width_mm",
    "height_mm",
    "dpi",
    "bleed_mm",
    "safe_margin_mm",
    "corner_radius_mm",
    "art_x_mm",
    "art_y_mm",
    "art_width_mm",
    "art_height_mm",
    "bleed_fill",
    "background_color",
    "frame_color",
    "frame_width_mm",
    "frame_overlay",
    "index_template",
    "index_font",
    "index_size_mm",
    "index_color",
    "index_color_column",
    "index_color_map",
    "title_template",
    "title_font",
    "title_size_mm",
    "title_color",
    "title_position",
    "title_band_color",
    "title_band_opacity",
    "font_fallbacks",
    "back_image",
    "back_color",
    "back_prompt",
)
ART_FIELDS = ("art_x_mm", "art_y_mm", "art_width_mm", "art_height_mm")
COLOR_FIELDS = ("background_color", "frame_color", "index_color", "title_color", "back_color")


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.fields.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.fields:
            first = next(iter(self.fields.values()))[0]
            raise ApplicationError(first, fields=self.fields)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def trim_size_mm(design: CardDesign) -> tuple[float, float] | None:
    if design.size_preset == CardDesign.SizePreset.CUSTOM:
        if design.width_mm is None or design.height_mm is None:
            return None
        return float(design.width_mm), float(design.height_mm)
    preset = SIZE_PRESETS.get(design.size_preset)
    return (preset.width_mm, preset.height_mm) if preset else None


def design_geometry(design: CardDesign) -> CardGeometry:
    size = trim_size_mm(design)
    if size is None:
        raise ApplicationError("The design has no card size.", fields={"size_preset": ["Choose a card size."]})
    return CardGeometry(size[0], size[1], float(design.bleed_mm), int(design.dpi), float(design.safe_margin_mm))


def art_window_mm(design: CardDesign, size: tuple[float, float]) -> tuple[float, float, float, float]:
    values = [getattr(design, name) for name in ART_FIELDS]
    if all(value is None for value in values):
        return 0.0, 0.0, size[0], size[1]
    return tuple(float(value) for value in values)  # type: ignore[return-value]


def _file_present(value: FieldFile | None) -> bool:
    return bool(value and value.name)


def _image_of_field(value: FieldFile) -> Any:
    """Decode a design's image file, stored or just uploaded (the image is loaded whole)."""
    committed = getattr(value, "_committed", True)
    value.open("rb")
    try:
        value.seek(0)
        return image_open_checked(value)
    finally:
        if committed:
            value.close()
        else:
            # An upload is read again when the model saves it.
            value.seek(0)


def _validate_geometry(design: CardDesign, errors: _Errors) -> tuple[float, float] | None:
    if design.size_preset not in CardDesign.SizePreset.values:
        errors.add(
            "size_preset",
            f"Unknown size {design.size_preset!r}; choose one of {', '.join(CardDesign.SizePreset.values)}.",
        )
        return None
    if design.size_preset == CardDesign.SizePreset.CUSTOM:
        for name in ("width_mm", "height_mm"):
            value = _decimal(getattr(design, name))
            if value is None:
                errors.add(name, "A custom size needs its width and height in millimetres.")
            elif not CUSTOM_SIZE_MIN_MM <= value <= CUSTOM_SIZE_MAX_MM:
                errors.add(name, f"{value} mm is outside {CUSTOM_SIZE_MIN_MM}-{CUSTOM_SIZE_MAX_MM} mm.")
    dpi = design.dpi
    if not isinstance(dpi, int) or not DPI_MIN <= dpi <= DPI_MAX:
        errors.add("dpi", f"DPI must be between {DPI_MIN} and {DPI_MAX} (300 is what card printers ask for).")
    bleed = _decimal(design.bleed_mm)
    if bleed is None or not 0 <= bleed <= BLEED_MAX_MM:
        errors.add("bleed_mm", f"The bleed must be 0 to {BLEED_MAX_MM} mm (printers ask for about 3 mm).")
    if errors.fields:
        return None
    size = trim_size_mm(design)
    assert size is not None
    short = min(size)
    safe = _decimal(design.safe_margin_mm)
    if safe is None or safe < 0 or 2 * float(safe) >= short:
        errors.add(
            "safe_margin_mm",
            f"The safe margin ({design.safe_margin_mm} mm) must leave room inside a {size[0]:g} x {size[1]:g} mm "
            f"card: less than {short / 2:g} mm.",
        )
    radius = _decimal(design.corner_radius_mm)
    if radius is None or radius < 0 or float(radius) > short / 2:
        errors.add("corner_radius_mm", f"The corner radius must be 0 to {short / 2:g} mm.")
    assert bleed is not None  # refused above otherwise
    geometry = CardGeometry(size[0], size[1], float(bleed), dpi)
    width, height = geometry.canvas_px
    if width * height > MAX_CARD_PIXELS:
        errors.add(
            "dpi",
            f"At {dpi} DPI the card would be {width} x {height} px ({width * height / 1e6:.0f} megapixels); "
            f"the most is {MAX_CARD_PIXELS / 1e6:.0f}. Lower the DPI.",
        )
    return size


def _validate_art_window(design: CardDesign, size: tuple[float, float], errors: _Errors) -> None:
    values = {name: _decimal(getattr(design, name)) for name in ART_FIELDS}
    given = [name for name, value in values.items() if value is not None]
    if not given:
        return
    if len(given) != len(ART_FIELDS):
        for name in ART_FIELDS:
            if values[name] is None:
                errors.add(name, "Give all four art window values (x, y, width, height), or none for the whole card.")
        return
    x, y, width, height = (float(values[name]) for name in ART_FIELDS)  # type: ignore[arg-type]
    if x < 0:
        errors.add("art_x_mm", "The art window starts left of the card: x must be 0 or more.")
    if y < 0:
        errors.add("art_y_mm", "The art window starts above the card: y must be 0 or more.")
    if width <= 0:
        errors.add("art_width_mm", "The art window needs a width above 0 mm.")
    elif x + width > size[0] + 1e-6:
        errors.add(
            "art_width_mm",
            f"The art window leaves the card: x + width = {x + width:g} mm, past the card's width of {size[0]:g} mm.",
        )
    if height <= 0:
        errors.add("art_height_mm", "The art window needs a height above 0 mm.")
    elif y + height > size[1] + 1e-6:
        errors.add(
            "art_height_mm",
            f"The art window leaves the card: y + height = {y + height:g} mm, past the card's height of {size[1]:g} mm.",
        )


def _validate_overlay(design: CardDesign, geometry: CardGeometry, errors: _Errors) -> None:
    if not _file_present(design.frame_overlay):
        return
    try:
        overlay = _image_of_field(design.frame_overlay)
    except (ImageInputError, OSError) as exc:
        errors.add("frame_overlay", f"The overlay could not be read: {exc}")
        return
    if overlay.format != "PNG":
        errors.add("frame_overlay", f"The overlay must be a PNG (this file is {overlay.format or 'unknown'}).")
        return
    if not has_alpha(overlay):
        errors.add("frame_overlay", "The overlay has no transparency (alpha channel): the art would not show through.")
        return
    aspect = overlay.width / overlay.height
    targets = {"trim": geometry.trim_px, "trim + bleed": geometry.canvas_px}
    if not any(abs(aspect / (w / h) - 1) <= OVERLAY_ASPECT_TOLERANCE for w, h in targets.values()):
        wanted = " or ".join(f"{w} x {h} px ({name})" for name, (w, h) in targets.items())
        errors.add(
            "frame_overlay",
            f"The overlay is {overlay.width} x {overlay.height} px, not the card's shape: make it {wanted}.",
        )


BACK_PROMPT_MAX = 1000


def _validate_back(design: CardDesign, errors: _Errors) -> None:
    if len(design.back_prompt or "") > BACK_PROMPT_MAX:
        errors.add(
            "back_prompt", f"The back prompt is {len(design.back_prompt)} characters; the limit is {BACK_PROMPT_MAX}."
        )
    if not _file_present(design.back_image):
        return
    try:
        _image_of_field(design.back_image)
    except (ImageInputError, OSError) as exc:
        errors.add("back_image", f"The card back could not be read: {exc}")


def _validate_colors(design: CardDesign, errors: _Errors) -> None:
    for name in (*COLOR_FIELDS, "title_band_color"):
        value = getattr(design, name) or ""
        if name == "title_band_color" and not value:
            continue
        try:
            color_parse(value)
        except ValueError:
            errors.add(name, f"{value!r} is not a colour: use #rrggbb or a CSS colour name.")
    if not 0 <= (design.title_band_opacity or 0) <= 100:
        errors.add("title_band_opacity", "The band's opacity is a percentage, 0 to 100.")


def _validate_fonts(design: CardDesign, errors: _Errors) -> None:
    for name in ("index_font", "title_font"):
        if getattr(design, name) not in FONTS:
            errors.add(name, f"Unknown font {getattr(design, name)!r}; bundled fonts: {', '.join(FONTS)}.")
    fallbacks = design.font_fallbacks
    if not isinstance(fallbacks, list) or not all(isinstance(key, str) for key in fallbacks):
        errors.add("font_fallbacks", "Give the fallback fonts as a list of bundled font names.")
        return
    unknown = [key for key in fallbacks if key not in FONTS]
    if unknown:
        errors.add("font_fallbacks", f"Unknown fonts {', '.join(unknown)}; bundled fonts: {', '.join(FONTS)}.")


def _validate_sizes(design: CardDesign, size: tuple[float, float], errors: _Errors) -> None:
    short = min(size)
    for name, most in (("frame_width_mm", short / 4), ("index_size_mm", short / 3), ("title_size_mm", short / 3)):
        value = _decimal(getattr(design, name))
        least = 0 if name == "frame_width_mm" else 0.5
        if value is None or not least <= float(value) <= most:
            errors.add(name, f"{getattr(design, name)} mm is outside {least:g} to {most:g} mm for this card.")


def _validate_texts(design: CardDesign, template: BatchTemplate, errors: _Errors) -> None:
    """Placeholders name real columns; every row's text can be drawn by the design's fonts."""
    columns = list(template.columns)
    known = set(columns) | set(PSEUDO_COLUMNS)
    texts = {"index_template": design.index_template, "title_template": design.title_template}
    for field, text in texts.items():
        try:
            placeholders = template_placeholders(text or "")
        except TextTemplateError as exc:
            errors.add(field, str(exc))
            continue
        missing = sorted({placeholder.column for placeholder in placeholders} - known)
        if missing:
            errors.add(
                field,
                f"No column {', '.join(repr(name) for name in missing)} in template {template.name!r}; "
                f"columns: {', '.join(columns) or 'none'} (and {', '.join(PSEUDO_COLUMNS)}).",
            )
    column = design.index_color_column
    if column and column not in columns:
        errors.add(
            "index_color_column", f"No column {column!r} in template {template.name!r}; columns: {', '.join(columns)}."
        )
    color_map = design.index_color_map
    if not isinstance(color_map, dict):
        errors.add("index_color_map", 'Give the colour rule as {"value": "#rrggbb", ...}.')
    else:
        for value, colour in color_map.items():
            try:
                color_parse(str(colour))
            except ValueError:
                errors.add("index_color_map", f"{colour!r} (for {value!r}) is not a colour.")
    if errors.fields:
        return
    if column and not color_map:
        for number, row in enumerate(template.csv_data, 1):
            try:
                color_parse(str(row.get(column, "")))
            except ValueError:
                errors.add(
                    "index_color_column",
                    f"Row {number}: {row.get(column)!r} in column {column!r} is not a colour; "
                    "give a colour rule or a column of colours.",
                )
                break
    _validate_coverage(design, template, errors)


def _validate_coverage(design: CardDesign, template: BatchTemplate, errors: _Errors) -> None:
    fallbacks = list(design.font_fallbacks)
    checks = (
        ("index_template", design.index_template, font_chain(design.index_font, fallbacks)),
        ("title_template", design.title_template, font_chain(design.title_font, fallbacks)),
    )
    for field, text, chain in checks:
        if not text:
            continue
        missing: dict[str, list[int]] = {}
        shaped = False
        for number, row in enumerate(template.csv_data, 1):
            values = {
                "title": row_title(row, columns=template.columns, fallback=f"Card {number}"),
                "index": number,
                **row,
            }
            filled = template_fill(text, values)
            shaped = shaped or needs_shaping(filled)
            for char in coverage_missing(filled, chain):
                missing.setdefault(char, []).append(number)
        if missing:
            rows = sorted({number for numbers in missing.values() for number in numbers})
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            errors.add(
                field,
                f"The fonts of this design cannot draw {describe_chars(list(missing))} (rows {shown}); "
                "remove the characters or add a bundled font that has them to the fallbacks.",
            )
        elif shaped and not shaping_available():
            errors.add(
                field,
                "This text needs complex-script shaping (Arabic, Hebrew or Indic), which this installation "
                "lacks: Pillow's libraqm needs the system's libfribidi (apt-get install libfribidi0).",
            )


def design_validate(design: CardDesign, *, template: BatchTemplate | None = None) -> None:
    """Raise ApplicationError (with every field's problems) unless the design renders and prints."""
    errors = _Errors()
    template = template or design.template
    if not (design.name or "").strip():
        errors.add("name", "Give the design a name.")
    size = _validate_geometry(design, errors)
    if size is None:
        errors.raise_if_any()
        return
    _validate_art_window(design, size, errors)
    _validate_colors(design, errors)
    _validate_fonts(design, errors)
    _validate_sizes(design, size, errors)
    if design.bleed_fill not in CardDesign.BleedFill.values:
        errors.add("bleed_fill", f"Choose one of {', '.join(CardDesign.BleedFill.values)}.")
    if design.title_position not in CardDesign.TitlePosition.values:
        errors.add("title_position", f"Choose one of {', '.join(CardDesign.TitlePosition.values)}.")
    if not errors.fields:
        _validate_texts(design, template, errors)
    _validate_overlay(design, design_geometry(design), errors)
    _validate_back(design, errors)
    errors.raise_if_any()


def design_defaults(template: BatchTemplate) -> dict[str, Any]:
    """Sensible first settings for a template: playing-card indices (red for Hearts and
    Diamonds) when it has value and suit columns, a title from its first column otherwise."""
    columns = list(template.columns)
    if {"value", "suit"} <= set(columns):
        return {
            "index_template": "{value|rank}\n{suit|suit}",
            "index_color_column": "suit",
            "index_color_map": {"Hearts": PLAYING_CARD_RED, "Diamonds": PLAYING_CARD_RED, "Red": PLAYING_CARD_RED},
            "title_template": "",
        }
    return {"title_template": f"{{{columns[0]}}}" if columns else ""}


def _apply(design: CardDesign, fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown design fields: {', '.join(unknown)}.", fields={name: ["Unknown field."] for name in unknown}
        )
    for name, value in fields.items():
        if name in ("frame_overlay", "back_image") and isinstance(value, bytes):
            # Written to storage only when the validated design is saved.
            value = ContentFile(value, name=f"{name}.png")
        setattr(design, name, value)


@transaction.atomic
def design_create(*, template: BatchTemplate, name: str, created_by: Any = None, **fields: Any) -> CardDesign:
    design = CardDesign(template=template, name=name, created_by=created_by, **design_defaults(template))
    _apply(design, fields)
    design_validate(design, template=template)
    design.save()
    return design


@transaction.atomic
def design_update(*, design: CardDesign, **fields: Any) -> CardDesign:
    _apply(design, fields)
    design_validate(design)
    design.save()
    return design


@transaction.atomic
def design_copy(
    *, design: CardDesign, template: BatchTemplate | None = None, name: str | None = None, created_by: Any = None
) -> CardDesign:
    """A new design with the same settings (and its own copies of the overlay and back files),
    for the same template or another one; validated against the target template's columns."""
    target = template or design.template
    copy_name = name or _copy_name(design, target)
    copy = CardDesign(template=target, name=copy_name, created_by=created_by)
    for field_name in EDITABLE_FIELDS:
        if field_name in ("name", "frame_overlay", "back_image"):
            continue
        setattr(copy, field_name, getattr(design, field_name))
    for field_name in ("frame_overlay", "back_image"):
        source = getattr(design, field_name)
        if _file_present(source):
            with source.open("rb") as handle:
                setattr(copy, field_name, ContentFile(handle.read(), name=Path(source.name).name))
    design_validate(copy, template=target)
    copy.save()
    return copy


def _copy_name(design: CardDesign, template: BatchTemplate) -> str:
    base = design.name if template.pk != design.template_id else f"{design.name} (copy)"
    name, counter = base, 2
    while CardDesign.objects.filter(template=template, name=name).exists():
        name = f"{base} {counter}"
        counter += 1
    return name


def _file_path(value: FieldFile) -> Path | None:
    return media_path(value.name) if _file_present(value) else None


def design_spec(design: CardDesign) -> CardSpec:
    geometry = design_geometry(design)
    fallbacks = list(design.font_fallbacks)
    index = None
    if design.index_template.strip():
        index = IndexStyle(
            template=design.index_template,
            fonts=font_chain(design.index_font, fallbacks),
            size_mm=float(design.index_size_mm),
            color=design.index_color,
            color_column=design.index_color_column,
            color_map=dict(design.index_color_map or {}),
        )
    title = None
    if design.title_template.strip():
        title = TitleStyle(
            template=design.title_template,
            fonts=font_chain(design.title_font, fallbacks),
            size_mm=float(design.title_size_mm),
            color=design.title_color,
            position=design.title_position,
            band_color=design.title_band_color,
            band_opacity=design.title_band_opacity,
        )
    return CardSpec(
        geometry=geometry,
        art_window_mm=art_window_mm(design, (geometry.trim_width_mm, geometry.trim_height_mm)),
        bleed_fill=design.bleed_fill,
        background_color=design.background_color,
        frame_color=design.frame_color,
        frame_width_mm=float(design.frame_width_mm),
        overlay_path=_file_path(design.frame_overlay),
        index=index,
        title=title,
        back_color=design.back_color,
        back_path=_file_path(design.back_image),
        corner_radius_mm=float(design.corner_radius_mm),
    )


def design_fingerprint(design: CardDesign) -> str:
    """A digest of everything about the design that shows on a card (files by content)."""
    data: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        # The back prompt shows only through the generated back, whose file is in the back's key.
        if name in ("name", "back_prompt"):
            continue
        value = getattr(design, name)
        if name in ("frame_overlay", "back_image"):
            path = _file_path(value)
            value = hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
        data[name] = str(value) if isinstance(value, Decimal) else value
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
