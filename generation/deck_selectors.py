"""Reads of decks for pages and the API, in a fixed number of queries whatever the deck's size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from albums.models import Album, Image
from generation.models import BatchGenerationRun, DeckComparison, DeckSlot, GenerationJob

# A take cancelled before it had an image is no take at all: the card does not list it.
DROPPED = Q(status=GenerationJob.Status.CANCELLED, result_image__isnull=True)


@dataclass
class DeckCard:
    """A slot as a page shows it: its takes in the order they were asked for and its pick."""

    slot: DeckSlot
    takes: list[GenerationJob] = field(default_factory=list)

    @property
    def images(self) -> list[Image]:
        return [job.result_image for job in self.takes if job.result_image is not None]

    @property
    def pick(self) -> Image | None:
        """The chosen image, else the first finished take."""
        if self.slot.pick is not None:
            return self.slot.pick
        return next(iter(self.images), None)

    @property
    def pending(self) -> int:
        return sum(1 for job in self.takes if not job.is_finished)

    @property
    def failed(self) -> list[GenerationJob]:
        return [job for job in self.takes if job.status == GenerationJob.Status.FAILED]


def takes_in_order() -> QuerySet[GenerationJob]:
    return (
        GenerationJob.objects.exclude(DROPPED)
        .select_related("result_image")
        .only(
            "id",
            "slot_id",
            "status",
            "seed",
            "steps",
            "guidance_scale",
            "strength",
            "init_image_id",
            "prompt",
            "lora_stack",
            "error",
            "progress_done",
            "created_at",
            "result_image__id",
            "result_image__file",
            "result_image__width",
            "result_image__height",
            "result_image__title",
            "result_image__is_nsfw",
        )
        .order_by("created_at", "id")
    )


def deck_slots(*, album: Album) -> QuerySet[DeckSlot]:
    return (
        DeckSlot.objects.filter(album=album)
        .select_related("pick")
        .prefetch_related(Prefetch("takes", queryset=takes_in_order()))
        .order_by("index")
    )


def deck_cards(*, album: Album) -> list[DeckCard]:
    """Every slot of the deck with its takes and pick: two queries for any number of slots and takes."""
    return [DeckCard(slot=slot, takes=list(slot.takes.all())) for slot in deck_slots(album=album)]


def album_is_deck(*, album: Album) -> bool:
    return DeckSlot.objects.filter(album=album).exists()


def deck_picks(*, album: Album) -> list[tuple[DeckSlot, Image]]:
    """(slot, picked image) in slot order, slots with no image yet left out."""
    return [(card.slot, card.pick) for card in deck_cards(album=album) if card.pick is not None]


@dataclass(frozen=True)
class TakeRow:
    """A take as the deck page needs it (plain values: no model instances for 160-odd takes)."""

    job_id: int
    status: str
    seed: int
    strength: float | None
    image_id: int | None
    progress_done: int
    steps: int
    is_nsfw: bool | None = None
    prompt: str = ""

    @property
    def is_finished(self) -> bool:
        return self.status in GenerationJob.TERMINAL


TAKE_FIELDS = (
    "slot_id",
    "id",
    "status",
    "seed",
    "strength",
    "result_image_id",
    "progress_done",
    "steps",
    "result_image__is_nsfw",
    "prompt",
)


def _take_row(values: list[Any]) -> TakeRow:
    """A row of ``TAKE_FIELDS`` after its slot id."""
    job_id, status, seed, strength, image_id, progress_done, steps, nsfw, prompt = values
    return TakeRow(job_id, status, seed, strength, image_id, progress_done, steps, nsfw, prompt or "")


@dataclass
class CardRow:
    index: int
    title: str
    prompt_edit: str
    picked_id: int | None
    takes: list[TakeRow] = field(default_factory=list)
    picked_nsfw: bool | None = None

    @property
    def pick_nsfw(self) -> bool:
        if self.picked_id is not None:
            return bool(self.picked_nsfw)
        return next((bool(take.is_nsfw) for take in self.takes if take.image_id is not None), False)

    @property
    def pick_id(self) -> int | None:
        """The chosen image, else the first finished take's."""
        if self.picked_id is not None:
            return self.picked_id
        return next((take.image_id for take in self.takes if take.image_id is not None), None)

    @property
    def pending(self) -> int:
        return sum(1 for take in self.takes if not take.is_finished)


def deck_card_rows(*, album_id: int, index: int | None = None) -> list[CardRow]:
    """The deck page's cards and takes as plain values, in two queries whatever the deck's size;
    ``index``: only that card (its live refresh).

    Model instances for 54 slots x 3 takes with their images cost 3-4x the time of the same
    rows as tuples (bench/deck_page.py).
    """
    slots = DeckSlot.objects.filter(album_id=album_id).order_by("index")
    if index is not None:
        slots = slots.filter(index=index)
    cards = {
        pk: CardRow(index=index, title=title, prompt_edit=prompt_edit, picked_id=pick_id, picked_nsfw=nsfw)
        for pk, index, title, prompt_edit, pick_id, nsfw in slots.values_list(
            "id", "index", "title", "prompt_edit", "pick_id", "pick__is_nsfw"
        )
    }
    if not cards:
        return []
    jobs = GenerationJob.objects.filter(slot__album_id=album_id)
    if index is not None:
        jobs = jobs.filter(slot_id__in=list(cards))
    takes = jobs.exclude(DROPPED).order_by("created_at", "id").values_list(*TAKE_FIELDS)
    for slot_id, *values in takes:
        cards[slot_id].takes.append(_take_row(values))
    return list(cards.values())


@dataclass
class ComparisonColumn:
    letter: str
    label: str
    run: BatchGenerationRun
    cards: dict[int, CardRow]


def comparison_columns(*, comparison: DeckComparison) -> list[ComparisonColumn]:
    """The comparison's variants in column order with their cards: three queries for any size."""
    from generation.services.comparisons import variant_label

    runs = list(comparison.runs.order_by("variant", "id"))
    album_ids = [run.album_id for run in runs if run.album_id]
    slots = DeckSlot.objects.filter(album_id__in=album_ids).order_by("index")
    by_slot: dict[int, CardRow] = {}
    per_album: dict[int, dict[int, CardRow]] = {album_id: {} for album_id in album_ids}
    for pk, album_id, index, title, prompt_edit, pick_id in slots.values_list(
        "id", "album_id", "index", "title", "prompt_edit", "pick_id"
    ):
        card = CardRow(index=index, title=title, prompt_edit=prompt_edit, picked_id=pick_id)
        by_slot[pk] = card
        per_album[album_id][index] = card
    takes = (
        GenerationJob.objects.filter(slot__album_id__in=album_ids)
        .exclude(DROPPED)
        .order_by("created_at", "id")
        .values_list(*TAKE_FIELDS)
    )
    for slot_id, *values in takes:
        by_slot[slot_id].takes.append(_take_row(values))
    variants = list(comparison.variants)
    return [
        ComparisonColumn(
            letter=chr(ord("A") + position),
            label=variant_label(
                variants[run.variant] if run.variant is not None and run.variant < len(variants) else {}
            ),
            run=run,
            cards=per_album.get(run.album_id or 0, {}),
        )
        for position, run in enumerate(runs)
    ]


def slot_takes_chosen(*, slot: DeckSlot, job_ids: list[int]) -> list[GenerationJob]:
    """The card's finished takes among ``job_ids`` (or its first ones when none are named), in take order:
    one query for any number of takes."""
    takes = takes_in_order().filter(slot=slot, result_image__isnull=False)
    return list(takes.filter(pk__in=job_ids) if job_ids else takes)
