"""The cards of a deck, as finishing and exports see them.

``CardSource`` is the one interface between "where the cards come from" and finishing. A deck
(an album with slots) gives one card per slot with the slot's pick; an album of a batch run
made before decks gives one card per template row with the row's image if it succeeded; any
other album gives its images in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from albums.models import Album, AlbumImage, Image
from albums.services.files import media_path
from cards.render.text import template_fill
from generation.models import DeckSlot, GenerationJob


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
    slot_id: int | None = None

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
    """The cards of an album: a deck's slots in order with their picks; else one per row of
    the batch run that made it (first run), with that row's image when it is still in the
    album; for any other album, its images in order (finished cards themselves excluded)."""
    slots = list(DeckSlot.objects.filter(album=album).select_related("pick").order_by("index"))
    if slots:
        picks = _deck_picks(slots)
        return [
            CardSource(
                index=slot.index + 1,
                title=(template_fill(title_template, slot.row).strip() if title_template else "")
                or slot.title
                or row_title(slot.row, fallback=f"Card {slot.index + 1}"),
                row=dict(slot.row),
                image=picks.get(slot.pk),
                slot_id=slot.pk,
            )
            for slot in slots
        ]
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


def _deck_picks(slots: Sequence[DeckSlot]) -> dict[int, Image]:
    """Each slot's pick: the chosen image, else its first finished take (the decks rule), in two queries."""
    picks = {slot.pk: slot.pick for slot in slots if slot.pick is not None}
    unpicked = [slot.pk for slot in slots if slot.pick is None]
    if unpicked:
        takes = (
            GenerationJob.objects.filter(slot_id__in=unpicked, result_image__isnull=False)
            .select_related("result_image")
            .order_by("created_at", "id")
        )
        for take in takes:
            if take.slot_id is not None and take.result_image is not None:
                picks.setdefault(take.slot_id, take.result_image)
    return picks
