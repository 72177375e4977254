"""Writes on albums and images used by the admin, pages and API."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max

from albums.models import Album, AlbumImage, Image
from albums.services.files import image_files_delete
from imagineer.errors import field_error


@transaction.atomic
def album_create(
    *, name: str, source_type: str = Album.SourceType.MANUAL, description: str = "", created_by: User | None = None
) -> Album:
    if not name or not name.strip():
        raise field_error("name", "Give the album a name.")
    return Album.objects.create(
        name=name.strip(),
        slug=Album.unique_slug(name),
        source_type=source_type,
        description=description,
        created_by=created_by,
    )


@transaction.atomic
def album_add_images(*, album: Album, images: Iterable[Image]) -> int:
    """Append images to the end of an album, skipping those already in it. Returns how many were added."""
    # Lock the album row so concurrent appends cannot take the same positions.
    Album.objects.select_for_update().filter(pk=album.pk).first()
    candidates = list(dict.fromkeys(images))
    present = set(
        album.memberships.filter(image__in=[image.pk for image in candidates]).values_list("image_id", flat=True)
    )
    next_position = (album.memberships.aggregate(top=Max("position"))["top"] or 0) + 1
    new = []
    for image in candidates:
        if image.pk in present:
            continue
        new.append(AlbumImage(album=album, image=image, position=next_position))
        next_position += 1
    AlbumImage.objects.bulk_create(new)
    return len(new)


@transaction.atomic
def album_remove_images(*, album: Album, images: Iterable[Image]) -> int:
    deleted, _ = AlbumImage.objects.filter(album=album, image__in=[image.pk for image in images]).delete()
    return deleted


@transaction.atomic
def album_move_image(*, album: Album, image: Image, offset: int) -> bool:
    """Move an image ``offset`` places (-1 earlier, +1 later) in the album's order by swapping
    positions with its neighbour; False at either end. Positions are renumbered 1..n first, so
    old albums with gaps or ties move predictably."""
    Album.objects.select_for_update().filter(pk=album.pk).first()
    memberships = list(album.memberships.order_by("position", "id"))
    index = next((i for i, m in enumerate(memberships) if m.image_id == image.pk), None)
    if index is None:
        raise field_error("image", "That image is not in this album.")
    target = index + offset
    if not 0 <= target < len(memberships):
        return False
    memberships[index], memberships[target] = memberships[target], memberships[index]
    for position, membership in enumerate(memberships, start=1):
        membership.position = position
    AlbumImage.objects.bulk_update(memberships, ["position"])
    return True


def image_set_nsfw(*, images: Iterable[Image], is_nsfw: bool) -> int:
    return Image.objects.filter(pk__in=[image.pk for image in images]).update(is_nsfw=is_nsfw)


def image_delete(*, image: Image) -> None:
    """Delete the row, then its files once the deletion has committed."""
    snapshot = Image(pk=image.pk, file=image.file.name, sha256=image.sha256)
    image.delete()
    transaction.on_commit(lambda: image_files_delete(snapshot))
