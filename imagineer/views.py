from __future__ import annotations

import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from albums.selectors import album_cards, album_list
from generation.selectors import engine_status, runs_active, template_list
from imagineer.permissions import role_required

HOME_ALBUMS = 12
CSP_REPORT_MAX_BYTES = 16 * 1024
csp_logger = logging.getLogger("imagineer.csp")


@require_safe
@role_required()
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "cards": album_cards(album_list()[:HOME_ALBUMS]),
            "templates": template_list(),
            "active_runs": list(runs_active()),
            "engine": engine_status(),
        },
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
