from __future__ import annotations

import mimetypes
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import http_date, quote_etag
from django.views.decorators.http import condition, require_safe

from albums.models import Image
from albums.services.files import image_thumbnail_path, media_path, thumbnail_size_normalize


def _image_etag(request: HttpRequest, pk: int, size: int | None = None) -> str | None:
    sha = Image.objects.filter(pk=pk).values_list("sha256", flat=True).first()
    if sha is None:
        return None
    return f"{sha}-{size}" if size else sha


def _image_modified(request: HttpRequest, pk: int, size: int | None = None) -> datetime | None:
    return Image.objects.filter(pk=pk).values_list("updated_at", flat=True).first()


def _file_response(path, content_type: str | None, *, filename: str | None = None) -> HttpResponse:
    if not path.is_file():
        raise Http404("The image file is missing on disk.")
    response = FileResponse(path.open("rb"), content_type=content_type, filename=filename or path.name)
    response["Cache-Control"] = "private, max-age=3600"
    response["Last-Modified"] = http_date(datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).timestamp())
    return response


@require_safe
@login_required
@condition(
    etag_func=lambda request, pk: _image_etag(request, pk),
    last_modified_func=lambda request, pk: _image_modified(request, pk),
)
def image_file(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(Image, pk=pk)
    path = media_path(image.file.name)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = _file_response(path, content_type)
    response["ETag"] = quote_etag(image.sha256)
    return response


@require_safe
@login_required
def image_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        size = thumbnail_size_normalize(int(request.GET.get("size", 256)))
    except ValueError:
        size = 256

    @condition(
        etag_func=lambda request: _image_etag(request, pk, size),
        last_modified_func=lambda request: _image_modified(request, pk),
    )
    def respond(request: HttpRequest) -> HttpResponse:
        image = get_object_or_404(Image, pk=pk)
        try:
            path = image_thumbnail_path(image, size)
        except FileNotFoundError:
            raise Http404("The image file is missing on disk.") from None
        response = _file_response(path, "image/webp")
        response["ETag"] = quote_etag(f"{image.sha256}-{size}")
        return response

    return respond(request)
