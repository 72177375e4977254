from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from albums.selectors import album_cover_images, album_list
from generation.models import BatchTemplate
from generation.selectors import engine_status
from generation.views import active_runs
from imagineer.permissions import role_required

HOME_ALBUMS = 12
CSP_REPORT_MAX_BYTES = 16 * 1024
csp_logger = logging.getLogger("imagineer.csp")


@require_safe
@role_required()
def home(request: HttpRequest) -> HttpResponse:
    albums = list(album_list()[:HOME_ALBUMS])
    covers = album_cover_images(albums)
    for album in albums:
        album.cover = covers.get(album.pk)
    templates = BatchTemplate.objects.prefetch_related("lora_stack__lora")
    return render(
        request,
        "home.html",
        {"albums": albums, "templates": templates, "active_runs": list(active_runs()), "engine": engine_status()},
    )


@csrf_exempt
@login_not_required
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    """Log a browser's Content-Security-Policy violation report; anyone may send one, so it is bounded."""
    body = request.read(CSP_REPORT_MAX_BYTES + 1)
    if len(body) > CSP_REPORT_MAX_BYTES:
        return HttpResponse(status=413)
    try:
        report = json.loads(body)["csp-report"]
    except (ValueError, KeyError, TypeError):
        return HttpResponse("Send a JSON object with a csp-report member.\n", status=400)
    if not isinstance(report, dict):
        return HttpResponse("csp-report must be a JSON object.\n", status=400)
    csp_logger.warning(
        "CSP violation on %s: %s blocked %s",
        str(report.get("document-uri", "?"))[:300],
        str(report.get("violated-directive", "?"))[:100],
        str(report.get("blocked-uri", "?"))[:300],
    )
    return HttpResponse(status=204)
