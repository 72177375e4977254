"""Layout guides of templates: save with validation, uploaded layout images, and the guide
image of one row at the generation size (what phase 2 hands to img2img or ControlNet)."""

from __future__ import annotations

import io
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image

from albums.services.files import media_path
from cards.models import LayoutGuide, LayoutGuideImage
from cards.render.guide import GuideError, playing_card_guide, playing_card_parse
from cards.render.imageio import ImageInputError, fit_cover, image_open_checked
from generation.models import BatchTemplate
from imagineer.errors import ApplicationError, field_error

GUIDE_FIELDS = (
    "kind",
    "rank_column",
    "suit_column",
    "image_column",
    "mode",
    "strength",
    "controlnet_scale",
    "control_start",
    "control_end",
)


def _check_column(template: BatchTemplate, field: str, column: str, errors: dict[str, list[str]]) -> bool:
    if column in template.columns:
        return True
    errors.setdefault(field, []).append(
        f"No column {column!r} in template {template.name!r}; columns: {', '.join(template.columns) or 'none'}."
    )
    return False


def layout_guide_validate(guide: LayoutGuide) -> None:
    """Every row can get its guide: columns exist, ranks and suits parse, named images exist."""
    template = guide.template
    errors: dict[str, list[str]] = {}
    if guide.kind not in LayoutGuide.Kind.values:
        errors["kind"] = [f"Choose one of {', '.join(LayoutGuide.Kind.values)}."]
    if guide.mode not in LayoutGuide.Mode.values:
        errors["mode"] = [f"Choose one of {', '.join(LayoutGuide.Mode.values)}."]
    for name, low, high in (
        ("strength", 0.05, 1.0),
        ("controlnet_scale", 0.0, 2.0),
        ("control_start", 0.0, 1.0),
        ("control_end", 0.0, 1.0),
    ):
        value = getattr(guide, name)
        if not isinstance(value, (int, float)) or not low <= value <= high:
            errors.setdefault(name, []).append(f"{value!r} is outside {low:g} to {high:g}.")
    if not errors and guide.control_start >= guide.control_end:
        errors["control_end"] = ["ControlNet must stop after it starts: control_end above control_start."]
    if guide.kind == LayoutGuide.Kind.PLAYING_CARDS:
        ranks = _check_column(template, "rank_column", guide.rank_column, errors)
        suits = _check_column(template, "suit_column", guide.suit_column, errors)
        if ranks and suits:
            for number, row in enumerate(template.csv_data, 1):
                try:
                    playing_card_parse(str(row.get(guide.rank_column, "")), str(row.get(guide.suit_column, "")))
                except GuideError as exc:
                    errors.setdefault("rank_column", []).append(f"Row {number}: {exc}")
                    break
    elif (
        guide.kind == LayoutGuide.Kind.COLUMN
        and _check_column(template, "image_column", guide.image_column, errors)
        and guide.pk
    ):
        names = set(guide.images.values_list("name", flat=True))
        wanted = {str(row.get(guide.image_column, "")).strip() for row in template.csv_data}
        absent = sorted(wanted - names)
        if absent:
            errors.setdefault("image_column", []).append(
                f"Rows name layout images not uploaded yet: {', '.join(absent[:10])}"
                + (" ..." if len(absent) > 10 else "")
                + "."
            )
    if errors:
        raise ApplicationError(next(iter(errors.values()))[0], fields=errors)


@transaction.atomic
def layout_guide_save(*, template: BatchTemplate, **fields: Any) -> LayoutGuide:
    unknown = sorted(set(fields) - set(GUIDE_FIELDS))
    if unknown:
        raise ApplicationError(f"Unknown guide fields: {', '.join(unknown)}.")
    guide = LayoutGuide.objects.filter(template=template).first() or LayoutGuide(template=template)
    for name, value in fields.items():
        setattr(guide, name, value)
    layout_guide_validate(guide)
    guide.save()
    return guide


@transaction.atomic
def layout_guide_clear(*, template: BatchTemplate) -> None:
    """No guide for this template: generation is plain text-to-image again. The guide's images
    go with it (their files once the deletion has committed)."""
    guide = LayoutGuide.objects.filter(template=template).first()
    if guide is None:
        return
    names = [str(record.file.name) for record in guide.images.all() if record.file]
    guide.delete()
    transaction.on_commit(lambda: _unlink(names))


def _unlink(names: list[str]) -> None:
    for name in names:
        media_path(name).unlink(missing_ok=True)


@transaction.atomic
def layout_guide_image_add(*, guide: LayoutGuide, name: str, upload: IO[bytes] | bytes) -> LayoutGuideImage:
    """Store an uploaded layout image under a name, refusing undecodable files and bombs."""
    name = (name or "").strip()
    if not name:
        raise field_error("name", "Name the layout image (rows refer to it by this name).")
    data = upload if isinstance(upload, bytes) else upload.read()
    try:
        # The same pixel limit as album uploads and scrapes: a layout image is no bigger a risk.
        image = image_open_checked(io.BytesIO(data), max_pixels=settings.IMAGINEER_SCRAPE_MAX_PIXELS)
    except ImageInputError as exc:
        raise field_error("file", f"The layout image could not be used: {exc}") from None
    record = LayoutGuideImage.objects.filter(guide=guide, name=name).first() or LayoutGuideImage(guide=guide, name=name)
    record.file = ContentFile(data, name=f"{name}.{(image.format or 'png').lower()}")
    record.width, record.height = image.size
    record.save()
    return record


def guide_image_for_row(*, guide: LayoutGuide, row_index: int, size: tuple[int, int] | None = None) -> Image.Image:
    """The guide of one template row as RGB at the generation size (the template's by default)."""
    template = guide.template
    size = size or (template.width, template.height)
    row = template.csv_data[row_index]
    if guide.kind == LayoutGuide.Kind.PLAYING_CARDS:
        card = playing_card_parse(str(row.get(guide.rank_column, "")), str(row.get(guide.suit_column, "")))
        return playing_card_guide(card, size)
    if guide.kind == LayoutGuide.Kind.IMAGE:
        record = guide.images.order_by("-created_at").first()
    else:
        record = guide.images.filter(name=str(row.get(guide.image_column, "")).strip()).first()
    if record is None:
        raise ApplicationError(f"Row {row_index + 1} has no layout image; upload one.")
    with image_open_checked(media_path(record.file.name)) as image:
        return fit_cover(image.convert("RGB"), size)


def guide_preview_png(*, guide: LayoutGuide, index: int) -> bytes:
    """The guide of template row ``index`` (from 1) as a PNG at the generation size."""
    rows = len(guide.template.csv_data)
    if not 1 <= index <= rows:
        raise field_error("index", f"Choose a row from 1 to {rows}." if rows else "The template has no rows.")
    buffer = io.BytesIO()
    guide_image_for_row(guide=guide, row_index=index - 1).save(buffer, format="PNG")
    return buffer.getvalue()
