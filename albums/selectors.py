from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from albums.models import Album, AlbumImage


def album_list(*, source_type: str | None = None) -> QuerySet[Album]:
    albums = Album.objects.annotate(image_count=Count("memberships"))
    if source_type:
        albums = albums.filter(source_type=source_type)
    return albums


def album_with_images(*, album_id: int) -> Album:
    memberships = AlbumImage.objects.select_related("image").order_by("position", "id")
    return Album.objects.prefetch_related(Prefetch("memberships", queryset=memberships)).get(pk=album_id)


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


def _supports_distinct_on() -> bool:
    from django.db import connection

    return connection.features.can_distinct_on_fields
