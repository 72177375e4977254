"""The cards of a deck, as finishing and exports see them.

``CardSource`` is the one interface between "where the cards come from" and finishing. For
now the cards of an album are its generated images in row order (the album of a batch run:
one card per template row, the row's image if it succeeded); once decks land, the deck's
slots and their picks fill the same type, and nothing after it changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albums.models import Album, AlbumImage, Image
from albums.services.files import media_path
from cards.render.text import template_fill


@dataclass(frozen=True)
class CardSource:
    """One card of a deck: its 1-based place, title, template row and picked image (None when
    the slot has no pick yet). ``art`` replaces the pick's file as the card's art (the hires
    pass's output), ``art_key`` says what made it, for the finished card's render key."""

    index: int
    title: str
    row: Mapping[str, Any] = field(default_factory=dict)
    image: Image | None = None
    art: Path | None = None
    art_key: str = ""

    @property
    def image_path(self) -> Path | None:
        if self.art is not None:
            return self.art
        return media_path(self.image.file.name) if self.image is not None else None


def row_title(
    row: Mapping[str, Any], *, columns: Sequence[str] = (), title_template: str = "", fallback: str = ""
) -> str:
    """A card's title: the title template over the row, else the first non-empty value in
    column order (a row stored as JSON in PostgreSQL has lost its key order)."""
    if title_template:
        title = template_fill(title_template, row).strip()
        if title:
            return title
    ordered = [*columns, *(key for key in row if key not in columns)]
    first = next((str(row[key]) for key in ordered if str(row.get(key) or "").strip()), "")
    return first.strip() or fallback


def album_card_sources(*, album: Album, title_template: str = "") -> list[CardSource]:
    """The cards of an album: one per row of the batch run that made it (first run), with
    that row's image when it is still in the album; for any other album, its images in order
    (finished cards themselves excluded)."""
    run = album.generation_runs.select_related("template").order_by("created_at", "id").first()
    in_album = set(AlbumImage.objects.filter(album=album).values_list("image_id", flat=True))
    if run is not None:
        columns = list(run.template.columns) if run.template else []
        sources = []
        for job in run.jobs.select_related("result_image").order_by("row_index"):
            row = dict(job.prompt_parts.get("row") or {})
            picked = job.result_image if job.result_image_id in in_album else None
            index = (job.row_index or 0) + 1
            title = row_title(row, columns=columns, title_template=title_template, fallback=f"Card {index}")
            sources.append(CardSource(index=index, title=title, row=row, image=picked))
        return sources
    images = (
        Image.objects.filter(memberships__album=album, finished_card__isnull=True)
        .order_by("memberships__position", "memberships__id")
        .distinct()
    )
    return [
        CardSource(index=index, title=image.title or Path(image.file.name or "").stem, row={}, image=image)
        for index, image in enumerate(images, 1)
    ]
