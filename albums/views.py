from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any

from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_POST, require_safe

from albums.models import Album, AlbumImage, Image
from albums.preferences import nsfw_blur_set
from albums.selectors import (
    album_cover_images,
    album_image_neighbours,
    album_image_place,
    album_list,
    album_memberships,
    album_neighbours,
    album_tags,
)
from albums.services.files import media_path
from albums.services.serving import image_file_response
from generation.models import GenerationJob
from imagineer.errors import ApplicationError
from imagineer.permissions import LABEL, album_queryset_visible, can_act, public_albums_view, role_required
from labeling.selectors import album_labeling_job_latest, labeling_job_progress
from labeling.services import album_label_start, image_label_enqueue

# Album and image browsing uses @public_albums_view: with IMAGINEER_PUBLIC_ALBUMS off, anonymous
# visitors are sent to sign in, as everywhere else. With it on they may browse public albums
# (``Album.is_public``) and the images in them; any other album or image answers 404 to them,
# never 403 or a sign-in redirect, so a visitor cannot tell a private album from a missing one.
# Signed-in users see everything, as before.


def _visible_image(request: HttpRequest, pk: int) -> Image:
    """The image, or 404 when it does not exist or this visitor may not see it."""
    return get_object_or_404(album_queryset_visible(request.user, Image.objects.all()), pk=pk)


def _visible_album(request: HttpRequest, pk: int, albums: QuerySet[Album] | None = None) -> Album:
    """The album, or 404 when it does not exist or this visitor may not see it."""
    return get_object_or_404(
        album_queryset_visible(request.user, albums if albums is not None else Album.objects.all()), pk=pk
    )


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
    albums = list(album_queryset_visible(request.user, album_list(source_type=source_type or None)))
    covers = album_cover_images(albums)
    for album in albums:
        album.cover = covers.get(album.pk)
    return render(
        request,
        "albums/album_list.html",
        {"albums": albums, "source_type": source_type, "source_types": Album.SourceType.choices},
    )


@require_safe
@public_albums_view
def album_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An album's images; anonymous visitors only for a public album (else 404)."""
    album = _visible_album(request, pk, Album.objects.annotate(image_count=Count("memberships")))
    sort = request.GET.get("sort", "position")
    sort = sort if sort in SORT_LABELS else "position"
    nsfw = request.GET.get("nsfw", "")
    nsfw = nsfw if nsfw in NSFW_FILTERS else ""
    label = request.GET.get("label", "").strip()
    memberships = list(album_memberships(album=album, sort=sort, nsfw=nsfw, label=label))
    # reverse() per tile is a third of this page's render time at 54 images: build each URL once.
    image_url = url_for_ids("albums:album-image", album.pk)
    thumbnail_url = url_for_ids("albums:image-thumbnail")
    for membership in memberships:
        membership.href = image_url(membership.image_id)
        membership.thumbnail_url = thumbnail_url(membership.image_id)
    newer, older = album_neighbours(album=album, albums=album_queryset_visible(request.user, Album.objects.all()))
    labeling_job = album_labeling_job_latest(album=album)
    return render(
        request,
        "albums/album_detail.html",
        {
            "album": album,
            "memberships": memberships,
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
            "can_label": can_act(request.user, LABEL),
        },
    )


def url_for_ids(name: str, *leading: int) -> Callable[[int], str]:
    """A fast ``lambda pk: reverse(name, args=[*leading, pk])`` for URLs that end in an id."""
    marker = 987654321
    head, tail = reverse(name, args=[*leading, marker]).rsplit(str(marker), 1)
    return lambda pk: f"{head}{int(pk)}{tail}"


class _ZipSink:
    """A write-only file for ZipFile whose bytes are handed out as the response streams."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        return None

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _album_zip_stream(entries: list[tuple[str, str]]) -> Iterator[bytes]:
    """Zip the files one at a time: memory stays at one read chunk, whatever the album's size."""
    sink = _ZipSink()
    # Images are already compressed (PNG, WebP, JPEG): storing them is as small and far faster.
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, relative in entries:
            try:
                path = media_path(relative)
            except ValueError:
                continue
            if not path.is_file():
                continue
            with path.open("rb") as source, archive.open(arcname, mode="w") as target:
                for chunk in iter(lambda: source.read(_ZIP_CHUNK), b""):
                    target.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


_ZIP_CHUNK = 256 * 1024


@require_safe
@public_albums_view
def album_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The album's files as one zip; anonymous visitors only for a public album (else 404)."""
    album = _visible_album(request, pk)
    entries = []
    for index, (name, title) in enumerate(
        AlbumImage.objects.filter(album=album).order_by("position", "id").values_list("image__file", "image__title"),
        start=1,
    ):
        stem = slugify(title)[:60] if title else PurePosixPath(name).stem
        entries.append((f"{index:03d}-{stem}{PurePosixPath(name).suffix.lower()}", name))
    response = StreamingHttpResponse(_album_zip_stream(entries), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{album.slug or "album"}.zip"'
    return response


PROMPT_PARTS = (
    ("base_prompt", "Base prompt"),
    ("theme", "Theme"),
    ("row_text", "Row"),
    ("style_suffix", "Style suffix"),
)


def _model_text(model: Any) -> str:
    if not isinstance(model, dict):
        return str(model or "")
    text = str(model.get("id") or model.get("name") or "")
    if model.get("sha256"):
        text += f" [{model['sha256'][:10]}]"
    if model.get("is_noise_model"):
        text += " (built-in noise model)"
    return text


def _recipe(image: Image, job: GenerationJob | None) -> dict[str, Any] | None:
    """What made a generated image, from its job when there is one, else from the stored recipe."""
    recipe = dict(image.recipe or {})
    if job is None and not recipe:
        return None
    parts = (job.prompt_parts if job else None) or recipe.get("prompt_parts") or {}
    loras = (job.lora_stack if job else None) or recipe.get("loras") or []
    return {
        "prompt": (job.prompt if job else None) or image.prompt or recipe.get("prompt", ""),
        "negative_prompt": (job.negative_prompt if job else None) or image.negative_prompt,
        "parts": [(label, parts[key]) for key, label in PROMPT_PARTS if isinstance(parts.get(key), str) and parts[key]],
        "seed": job.seed if job else recipe.get("seed"),
        "steps": job.steps if job else recipe.get("steps"),
        "guidance_scale": job.guidance_scale if job else recipe.get("guidance_scale"),
        "width": image.width,
        "height": image.height,
        "scheduler": (job.scheduler if job else "") or recipe.get("scheduler", ""),
        "model": _model_text(recipe.get("model")),
        "loras": [lora for lora in loras if isinstance(lora, dict)],
    }


@require_safe
@public_albums_view
def album_image_detail(request: HttpRequest, album_pk: int, pk: int) -> HttpResponse:
    """An image in an album; anonymous visitors only in a public album (else 404)."""
    memberships = AlbumImage.objects.select_related("album", "image")
    if not request.user.is_authenticated:
        memberships = memberships.filter(album__in=album_queryset_visible(request.user, Album.objects.all()))
    membership = get_object_or_404(memberships, album_id=album_pk, image_id=pk)
    return _image_page(request, membership.image, membership)


def _image_page(request: HttpRequest, image: Image, membership: AlbumImage | None) -> HttpResponse:
    labels = list(image.labels.all())
    job = GenerationJob.objects.filter(result_image=image).first()
    context: dict[str, Any] = {
        "image": image,
        "recipe": _recipe(image, job),
        "job": job,
        "captions": [label for label in labels if label.label_type == "caption"],
        "tags": [label for label in labels if label.label_type == "tag"],
        "can_label": can_act(request.user, LABEL),
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
    memberships = AlbumImage.objects.filter(image_id=pk)
    if not request.user.is_authenticated:
        memberships = memberships.filter(album__in=album_queryset_visible(request.user, Album.objects.all()))
    membership = memberships.order_by("album_id").first()
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
def album_label(request: HttpRequest, pk: int) -> HttpResponse:
    album = get_object_or_404(Album, pk=pk)
    try:
        album_label_start(album=album, force=request.POST.get("force") == "on", user=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Labeling of “{album.name}” has started; labels appear as images are done.")
    return redirect("albums:album-detail", pk=album.pk)


@require_POST
@role_required(LABEL)
def image_label(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image, pk=pk)
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
