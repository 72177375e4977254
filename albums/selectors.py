"""Reads for album, image and scrape pages and the API. What a user may see is narrowed by the
caller with imagineer.permissions (albums_visible, scrape_jobs_visible ...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.db import connection
from django.db.models import Case, Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When

from albums.models import Album, AlbumImage, Image, ScrapeJob
from generation.models import BatchGenerationRun
from labeling.models import Label

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class AlbumCounts(TypedDict):
    image_count: int


class AlbumSummary(AlbumCounts):
    cover_image_id: int | None
    generation_run_id: int | None


AlbumWithCount: TypeAlias = "WithAnnotations[Album, AlbumCounts]"
AlbumWithSummary: TypeAlias = "WithAnnotations[Album, AlbumSummary]"


def album_list(*, source_type: str | None = None) -> QuerySet[AlbumWithCount]:
    albums = Album.objects.annotate(image_count=Count("memberships")).order_by("-created_at", "-id")
    if source_type:
        albums = albums.filter(source_type=source_type)
    return albums


def albums_annotated() -> QuerySet[AlbumWithSummary]:
    """Albums with their image count, cover image and generating run: one query for any number of rows."""
    first_image = AlbumImage.objects.filter(album=OuterRef("pk")).order_by("position", "id").values("image_id")[:1]
    run = BatchGenerationRun.objects.filter(album=OuterRef("pk")).order_by("-created_at", "-id").values("id")[:1]
    return Album.objects.annotate(
        image_count=Count("memberships", distinct=True),
        cover_image_id=Subquery(first_image),
        generation_run_id=Subquery(run),
    )


def legacy_batches() -> QuerySet[AlbumWithCount]:
    """Albums made by batch runs, newest first (the original's ``/api/batches``)."""
    return (
        Album.objects.filter(source_type=Album.SourceType.BATCH_GENERATION)
        .annotate(image_count=Count("memberships"))
        .order_by("-created_at", "-id")
    )


def album_images_in_order(*, album: Album) -> QuerySet[Image]:
    return Image.objects.filter(memberships__album=album).order_by("memberships__position", "memberships__id")


def deck_pick_ids(*, album: Album) -> list[int] | None:
    """A deck's picks in slot order (cards with no image yet left out); None for an album that is
    not a deck. Exports use these unless asked for every take."""
    from generation.deck_selectors import deck_card_rows

    if album.source_type != Album.SourceType.BATCH_GENERATION:
        return None
    cards = deck_card_rows(album_id=album.pk)
    if not cards:
        return None
    return [card.pick_id for card in cards if card.pick_id is not None]


def album_export_images(*, album: Album, all_takes: bool = False) -> QuerySet[Image]:
    """The images an export of the album holds, each with its ``position``: a deck's picks in slot
    order (every take with ``all_takes``), any other album's images in album order."""
    picks = None if all_takes else deck_pick_ids(album=album)
    if picks is None:
        return album_images_in_order(album=album).annotate(position=F("memberships__position"))
    order = Case(*(When(pk=pk, then=Value(place)) for place, pk in enumerate(picks, start=1)), default=Value(0))
    return Image.objects.filter(pk__in=picks).annotate(position=order).order_by("position")


def albums_newest_first() -> QuerySet[Album]:
    return Album.objects.order_by("-created_at", "-id")


def image_list(*, with_labels: bool = False, memberships: QuerySet[AlbumImage] | None = None) -> QuerySet[Image]:
    """Images, with their labels (captions, then tags) and their album memberships (these, for
    album_ids: the caller narrows them to what the visitor may see) prefetched when asked."""
    images = Image.objects.all()
    if with_labels:
        images = images.prefetch_related(Prefetch("labels", queryset=Label.objects.order_by("label_type", "id")))
    if memberships is not None:
        images = images.prefetch_related(Prefetch("memberships", queryset=memberships))
    return images


def memberships_with_album_and_image() -> QuerySet[AlbumImage]:
    return AlbumImage.objects.select_related("album", "image")


def album_with_count() -> QuerySet[AlbumWithCount]:
    return Album.objects.annotate(image_count=Count("memberships"))


def album_cover_images(albums: list[Album]) -> dict[int, AlbumImage]:
    """The first image of each album, in one query."""
    firsts = (
        AlbumImage.objects.filter(album__in=albums)
        .select_related("image")
        .order_by("album_id", "position", "id")
        .distinct("album_id")
        if _supports_distinct_on()
        else None
    )
    if firsts is not None:
        return {membership.album_id: membership for membership in firsts}
    covers: dict[int, AlbumImage] = {}
    for membership in (
        AlbumImage.objects.filter(album__in=albums).select_related("image").order_by("album_id", "position", "id")
    ):
        covers.setdefault(membership.album_id, membership)
    return covers


def album_cards(albums: Iterable[Album]) -> list[tuple[Album, AlbumImage | None]]:
    """(album, its cover image's membership or None) for gallery cards, covers in one query."""
    albums = list(albums)
    covers = album_cover_images(albums)
    return [(album, covers.get(album.pk)) for album in albums]


def _supports_distinct_on() -> bool:
    return connection.features.can_distinct_on_fields


ALBUM_SORTS = {
    "position": ("position", "id"),
    "newest": ("-image__created_at", "-id"),
    "oldest": ("image__created_at", "id"),
}


def album_memberships(*, album: Album, sort: str = "position", nsfw: str = "", label: str = "") -> QuerySet[AlbumImage]:
    """An album's images (as memberships, with the image joined) sorted and filtered for the gallery.

    ``nsfw`` is ``hide`` (safe only), ``only`` (NSFW only) or empty (all); ``label`` keeps images
    carrying that tag or caption text.
    """
    memberships = AlbumImage.objects.filter(album=album).select_related("image")
    if nsfw == "hide":
        memberships = memberships.filter(image__is_nsfw=False)
    elif nsfw == "only":
        memberships = memberships.filter(image__is_nsfw=True)
    if label:
        memberships = memberships.filter(image__labels__label_type="tag", image__labels__text=label).distinct()
    return memberships.order_by(*ALBUM_SORTS.get(sort, ALBUM_SORTS["position"]))


def album_tags(*, album: Album, limit: int = 40) -> list[str]:
    """The most used tags in an album, for the label filter."""
    rows = (
        Label.objects.filter(image__memberships__album=album, label_type=Label.LabelType.TAG)
        .values("text")
        .annotate(uses=Count("id"))
        .order_by("-uses", "text")[:limit]
    )
    return [row["text"] for row in rows]


def image_labels_split(*, image: Image) -> tuple[list[Label], list[Label]]:
    """The image's (captions, tags)."""
    labels = list(image.labels.all())
    return (
        [label for label in labels if label.label_type == Label.LabelType.CAPTION],
        [label for label in labels if label.label_type == Label.LabelType.TAG],
    )


def album_neighbours(*, album: Album, albums: QuerySet[Album] | None = None) -> tuple[Album | None, Album | None]:
    """The albums before and after this one in the gallery's order (newest first), among ``albums``
    (the ones this visitor may see; all by default)."""
    albums = Album.objects.all() if albums is None else albums
    newer = (
        albums.filter(Q(created_at__gt=album.created_at) | Q(created_at=album.created_at, id__gt=album.id))
        .order_by("created_at", "id")
        .only("id", "name")
        .first()
    )
    older = (
        albums.filter(Q(created_at__lt=album.created_at) | Q(created_at=album.created_at, id__lt=album.id))
        .order_by("-created_at", "-id")
        .only("id", "name")
        .first()
    )
    return newer, older


def album_image_place(*, membership: AlbumImage) -> tuple[int, int]:
    """(place, total): this image is the place-th of total in its album's order, in one query."""
    counts = AlbumImage.objects.filter(album_id=membership.album_id).aggregate(
        before=Count(
            "id", filter=Q(position__lt=membership.position) | Q(position=membership.position, id__lt=membership.id)
        ),
        total=Count("id"),
    )
    return counts["before"] + 1, counts["total"]


def album_image_neighbours(*, membership: AlbumImage) -> tuple[AlbumImage | None, AlbumImage | None]:
    """The images before and after this one in its album's order."""
    siblings = AlbumImage.objects.filter(album_id=membership.album_id).only("id", "image_id", "position")
    previous = (
        siblings.filter(Q(position__lt=membership.position) | Q(position=membership.position, id__lt=membership.id))
        .order_by("-position", "-id")
        .first()
    )
    following = (
        siblings.filter(Q(position__gt=membership.position) | Q(position=membership.position, id__gt=membership.id))
        .order_by("position", "id")
        .first()
    )
    return previous, following


def scrape_job_list() -> QuerySet[ScrapeJob]:
    return ScrapeJob.objects.select_related("album", "created_by")


def scrape_job_recent_images(*, job: ScrapeJob, limit: int) -> QuerySet[AlbumImage]:
    """The newest images the job has put in its album so far."""
    return (
        AlbumImage.objects.filter(album_id=job.album_id, image__created_at__gte=job.created_at)
        .select_related("image")
        .order_by("-position", "-id")[:limit]
    )
