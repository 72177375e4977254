"""Live preview of a design on one row of its template: what the pages and the API show.

The card is rendered as finishing renders it, at a screen resolution (``PREVIEW_DPI``), on the
row's art: the album's pick for that card when an album is given, else the template's layout
guide for the row, else a neutral gradient; then cut to the trim with rounded corners.
"""

from __future__ import annotations

import copy
import io

from PIL import Image as PILImage

from albums.models import Album
from albums.services.files import media_path
from cards.models import CardDesign, LayoutGuide
from cards.render.card import card_render, preview_render
from cards.render.imageio import ImageInputError, image_open_checked
from cards.services.designs import design_spec
from cards.services.guides import guide_image_for_row
from cards.services.sources import CardSource, album_card_sources, row_title
from imagineer.errors import ApplicationError, field_error

PREVIEW_DPI = 120
PREVIEW_HEIGHT = 420


def _placeholder(size: tuple[int, int]) -> PILImage.Image:
    width, height = size
    gradient = PILImage.linear_gradient("L").resize((width, height))
    return PILImage.merge("RGB", (gradient, gradient.transpose(PILImage.Transpose.FLIP_LEFT_RIGHT), gradient))


def _art(design: CardDesign, source: CardSource | None, row_index: int) -> PILImage.Image:
    if source is not None and source.image is not None:
        try:
            with image_open_checked(media_path(source.image.file.name)) as opened:
                return opened.convert("RGB")
        except (ImageInputError, OSError):
            pass
    template = design.template
    guide = LayoutGuide.objects.filter(template=template).first()
    if guide is not None and row_index < len(template.csv_data):
        try:
            return guide_image_for_row(guide=guide, row_index=row_index)
        except ApplicationError:
            pass
    return _placeholder((template.width, template.height))


def design_preview_png(*, design: CardDesign, index: int = 1, album: Album | None = None) -> bytes:
    """A PNG of card ``index`` (1-based) of the template (or the album's deck) in ``design``."""
    template = design.template
    sources = album_card_sources(album=album) if album is not None else []
    count = len(sources) if sources else len(template.csv_data)
    if count == 0:
        raise field_error("index", "This template has no rows to preview.")
    if not 1 <= index <= count:
        raise field_error("index", f"Choose a card from 1 to {count}.")
    source = sources[index - 1] if sources else None
    row = dict(source.row) if source is not None else dict(template.csv_data[index - 1])
    title = (
        source.title
        if source is not None
        else row_title(row, columns=template.columns, title_template=template.title_template, fallback=f"Card {index}")
    )
    screen = copy.copy(design)
    screen.dpi = min(design.dpi, PREVIEW_DPI)
    spec = design_spec(screen)
    card = card_render(spec, _art(design, source, index - 1), row=row, title=title, index=index)
    buffer = io.BytesIO()
    preview_render(card, spec, height=PREVIEW_HEIGHT).save(buffer, format="PNG")
    return buffer.getvalue()
