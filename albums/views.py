"""Album and image pages: the gallery, an album's images, an image with its recipe and labels,
the files, the zip download, and the label buttons.

Album and image browsing uses @public_albums_view: with IMAGINEER_PUBLIC_ALBUMS off, anonymous
visitors are sent to sign in, as everywhere else. With it on they may browse public albums
(``Album.is_public``) and the images in them; any other album or image answers 404 to them,
never 403 or a sign-in redirect, so a visitor cannot tell a private album from a missing one.
Signed-in users see everything, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from albums.models import Album, AlbumImage, Image
from albums.preferences import nsfw_blur_set
from albums.selectors import (
    album_cards,
    album_image_neighbours,
    album_image_place,
    album_list,
    album_memberships,
    album_neighbours,
    album_tags,
    album_with_count,
    image_labels_split,
    memberships_with_album_and_image,
)
from albums.services.exports import album_zip_stream
from albums.services.serving import image_file_response
from generation.deck_selectors import album_is_deck
from generation.services.recipes import image_job, image_recipe
from imagineer import permissions as perms
from imagineer.errors import ApplicationError
from imagineer.permissions import LABEL, SignedInRequest, public_albums_view, role_required
from labeling.selectors import album_labeling_job_latest, labeling_job_progress
from labeling.services import album_label_start, image_label_enqueue


def _visible_image(request: HttpRequest, pk: int) -> Image:
    """The image, or 404 when it does not exist or this visitor may not see it."""
    return get_object_or_404(perms.images_visible(request.user), pk=pk)


def _visible_album(request: HttpRequest, pk: int) -> Album:
    """The album, or 404 when it does not exist or this visitor may not see it."""
    return get_object_or_404(perms.albums_visible(request.user), pk=pk)


@require_safe
@public_albums_view
def image_file(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The original file; anonymous visitors only for images in a public album (else 404)."""
    return image_file_response(request, _visible_image(request, pk))


@require_safe
@public_albums_view
def image_thumbnail(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A WebP thumbnail; anonymous visitors only for images in a public album (else 404)."""
    try:
        size = max(int(request.GET.get("size", 256)), 1)
    except ValueError:
        size = 256
    return image_file_response(request, _visible_image(request, pk), thumbnail_size=size)


# --- pages ----------------------------------------------------------------------------------

NSFW_FILTERS = {"": "All images", "hide": "Hide NSFW", "only": "NSFW only"}
SORT_LABELS = {"position": "Album order", "newest": "Newest first", "oldest": "Oldest first"}


@require_safe
@public_albums_view
def album_list_page(request: HttpRequest) -> HttpResponse:
    """All albums; anonymous visitors (IMAGINEER_PUBLIC_ALBUMS on) see only the public ones."""
    source_type = request.GET.get("source", "")
    if source_type not in Album.SourceType.values:
        source_type = ""
    albums = perms.albums_visible(request.user, album_list(source_type=source_type or None))
    return render(
        request,
        "albums/album_list.html",
        {"cards": album_cards(albums), "source_type": source_type, "source_types": Album.SourceType.choices},
    )


@require_safe
@public_albums_view
def album_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An album's images; anonymous visitors only for a public album (else 404)."""
    album = get_object_or_404(perms.albums_visible(request.user, album_with_count()), pk=pk)
    is_generated = album.source_type == Album.SourceType.BATCH_GENERATION
    if is_generated and request.GET.get("view") != "images" and album_is_deck(album=album):
        from generation.views_decks import deck_page

        return deck_page(request, album)
    sort = request.GET.get("sort", "position")
    sort = sort if sort in SORT_LABELS else "position"
    nsfw = request.GET.get("nsfw", "")
    nsfw = nsfw if nsfw in NSFW_FILTERS else ""
    label = request.GET.get("label", "").strip()
    memberships = album_memberships(album=album, sort=sort, nsfw=nsfw, label=label)
    # reverse() per tile is a third of this page's render time at 54 images: build each URL once.
    image_url = url_for_ids("albums:album-image", album.pk)
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    tiles = [
        (membership, image_url(membership.image_id), thumbnail_url(membership.image_id)) for membership in memberships
    ]
    newer, older = album_neighbours(album=album, albums=perms.albums_visible(request.user))
    labeling_job = album_labeling_job_latest(album=album)
    return render(
        request,
        "albums/album_detail.html",
        {
            "album": album,
            "tiles": tiles,
            "tags": album_tags(album=album),
            "sort": sort,
            "nsfw": nsfw,
            "label": label,
            "sorts": SORT_LABELS,
            "nsfw_filters": NSFW_FILTERS,
            "newer": newer,
            "older": older,
            "filtered": bool(nsfw or label),
            "labeling": labeling_job_progress(job=labeling_job) if labeling_job else None,
            "can_label": perms.can_label_album(request.user, album),
        },
    )


def url_for_ids(name: str, *leading: int) -> Callable[[int], str]:
    """A fast ``lambda pk: reverse(name, args=[*leading, pk])`` for URLs that end in an id."""
    marker = 987654321
    head, tail = reverse(name, args=[*leading, marker]).rsplit(str(marker), 1)
    return lambda pk: f"{head}{int(pk)}{tail}"


@require_safe
@public_albums_view
def album_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The album's files as one zip; anonymous visitors only for a public album (else 404)."""
    album = _visible_album(request, pk)
    all_takes = request.GET.get("takes") == "all"
    response = StreamingHttpResponse(album_zip_stream(album=album, all_takes=all_takes), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{album.slug or "album"}.zip"'
    return response


@require_safe
@public_albums_view
def album_image_detail(request: HttpRequest, album_pk: int, pk: int) -> HttpResponse:
    """An image in an album; anonymous visitors only in a public album (else 404)."""
    memberships = perms.memberships_visible(request.user, memberships_with_album_and_image())
    membership = get_object_or_404(memberships, album_id=album_pk, image_id=pk)
    return _image_page(request, membership.image, membership)


def _image_page(request: HttpRequest, image: Image, membership: AlbumImage | None) -> HttpResponse:
    job = image_job(image=image)
    captions, tags = image_labels_split(image=image)
    context: dict[str, Any] = {
        "image": image,
        "recipe": image_recipe(image=image, job=job),
        "job": job,
        "captions": captions,
        "tags": tags,
        "can_label": perms.can_label_image(request.user, image),
    }
    if membership is not None:
        previous, following = album_image_neighbours(membership=membership)
        place, total = album_image_place(membership=membership)
        context.update(
            album=membership.album,
            membership=membership,
            previous=previous,
            following=following,
            place=place,
            total=total,
        )
    return render(request, "albums/image_detail.html", context)


@require_safe
@public_albums_view
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An image by id: shown in the first album that holds it, or on its own (single generations).

    Anonymous visitors are sent to the first public album holding it; 404 if there is none.
    """
    membership = perms.memberships_visible(request.user).filter(image_id=pk).order_by("album_id").first()
    if membership is not None:
        return redirect("albums:album-image", album_pk=membership.album_id, pk=pk)
    return _image_page(request, _visible_image(request, pk), None)


@require_POST
@role_required()
def nsfw_blur_toggle(request: HttpRequest) -> HttpResponse:
    enabled = request.POST.get("blur") == "on"
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    response = redirect(target or "home")
    nsfw_blur_set(request, response, enabled=enabled)
    messages.info(request, "NSFW images are blurred until you reveal them." if enabled else "NSFW blurring is off.")
    return response


@require_POST
@role_required(LABEL)
def album_label(request: SignedInRequest, pk: int) -> HttpResponse:
    album = _visible_album(request, pk)
    perms.ensure_can_label_album(request.user, album)
    try:
        album_label_start(album=album, force=request.POST.get("force") == "on", user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Labeling of “{album.name}” has started; labels appear as images are done.")
    return redirect("albums:album-detail", pk=album.pk)


@require_POST
@role_required(LABEL)
def image_label(request: SignedInRequest, pk: int) -> HttpResponse:
    image = _visible_image(request, pk)
    perms.ensure_can_label_image(request.user, image)
    album_pk = request.POST.get("album")
    try:
        image_label_enqueue(image=image, force=request.POST.get("force") == "on", user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Labeling queued; reload in a moment to see the labels.")
    if album_pk and album_pk.isdigit():
        return redirect("albums:album-image", album_pk=int(album_pk), pk=image.pk)
    return redirect("albums:image-detail", pk=image.pk)
