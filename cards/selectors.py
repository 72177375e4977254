"""Reads of designs and finishing jobs for pages and the API (visibility from imagineer.permissions)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.db.models import QuerySet
from django.http import FileResponse, Http404

from albums.models import Album
from albums.services.files import media_path
from cards.models import CardDesign, FinishingJob
from imagineer import permissions as perms
from imagineer.permissions import AnyUser


def designs_visible(user: AnyUser) -> QuerySet[CardDesign]:
    """Designs belong to templates, which every signed-in user sees."""
    return CardDesign.objects.select_related("template").order_by("template__name", "name", "id")


def finishing_jobs_visible(user: AnyUser, album: Album | None = None) -> QuerySet[FinishingJob]:
    """Finishing jobs are as visible as their album."""
    jobs = FinishingJob.objects.filter(album__in=perms.albums_visible(user)).select_related("album", "design")
    return jobs.filter(album=album) if album is not None else jobs


def finishing_file_response(job: FinishingJob, name: str) -> FileResponse:
    """Download one export of a finished job (404 when it has no such export, or its file is gone)."""
    relative = (job.result or {}).get("files", {}).get(name)
    if not relative:
        raise Http404(f"This job wrote no {name!r} export.")
    path = media_path(relative)
    if not path.is_file():
        raise Http404("The export's file is gone; finish the deck again.")
    filename = f"{job.album.slug}-{Path(relative).name}"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path.open("rb"), as_attachment=True, filename=filename, content_type=content_type)
