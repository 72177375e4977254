"""Serving image files and thumbnails with validators (ETag, Last-Modified) and 304s.

Callers look the Image up by id and check permissions first; the path comes from the row,
resolved inside MEDIA_ROOT by :func:`media_path`, never from the URL.
"""

from __future__ import annotations

import errno
import logging
import mimetypes

from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, quote_etag

from albums.models import Image
from albums.services.files import image_thumbnail_path, media_path, thumbnail_size_normalize

logger = logging.getLogger(__name__)
CACHE_CONTROL = "private, max-age=3600"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_RETRY_AFTER = 60


def _disk_full_response(exc: OSError) -> JsonResponse:
    logger.error("No space to write a thumbnail: %s", exc)
    message = (
        "The server's disk is full, so this thumbnail cannot be made now. "
        "Free space under MEDIA_ROOT (or ask the administrator to); the original image is unharmed."
    )
    response = JsonResponse({"error": {"code": "disk_full", "message": message, "fields": {}}}, status=503)
    response["Retry-After"] = str(DISK_FULL_RETRY_AFTER)
    return response


def image_file_response(request: HttpRequest, image: Image, *, thumbnail_size: int | None = None) -> HttpResponseBase:
    """The original file (``thumbnail_size`` None) or its cached thumbnail, or 304 Not Modified.

    The ETag is the content hash (plus the thumbnail size), so it changes exactly when the
    bytes do. A missing file or one outside MEDIA_ROOT is a 404; a thumbnail that cannot be
    written for lack of disk space is a 503 that says so.
    """
    if thumbnail_size is not None:
        thumbnail_size = thumbnail_size_normalize(thumbnail_size)
    etag = quote_etag(f"{image.sha256}-{thumbnail_size}" if thumbnail_size else image.sha256)
    last_modified = int(image.updated_at.timestamp())
    not_modified = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if not_modified is not None:
        not_modified["Cache-Control"] = CACHE_CONTROL
        return not_modified
    try:
        if thumbnail_size:
            path, content_type = image_thumbnail_path(image, thumbnail_size), "image/webp"
        else:
            path = media_path(image.file.name)
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    except (FileNotFoundError, ValueError):
        raise Http404("The image file is missing on disk.") from None
    except OSError as exc:
        if exc.errno in DISK_FULL:
            return _disk_full_response(exc)
        raise
    if not path.is_file():
        raise Http404("The image file is missing on disk.")
    response = FileResponse(path.open("rb"), content_type=content_type, filename=path.name)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = CACHE_CONTROL
    return response
