"""What /api/ answers for a URL no endpoint has: one URL rule, said plainly, DEBUG or not.

Every API path is written without a trailing slash (the original's rule). The slashed form
of a real endpoint is redirected for GET and HEAD; for other methods a redirect would lose
the body (and Django's APPEND_SLASH raises on POST), so it answers a 404 naming the right
URL. Anything else under /api/ is a JSON 404, also with DEBUG on (Django's handler404 only
runs with DEBUG off).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from imagineer.api import error_body

FALLBACK_NAME = "api-unmatched"


def _endpoint_exists(path: str) -> bool:
    try:
        return resolve(path).url_name != FALLBACK_NAME
    except Resolver404:
        return False


@csrf_exempt
@login_not_required
def api_unmatched(request: HttpRequest, rest: str = "") -> HttpResponse:
    path = request.path
    if path.endswith("/") and _endpoint_exists(path.rstrip("/")):
        target = path.rstrip("/")
        if request.method in ("GET", "HEAD"):
            query = request.META.get("QUERY_STRING", "")
            return HttpResponsePermanentRedirect(f"{target}?{query}" if query else target)
        return JsonResponse(
            error_body(
                "trailing_slash",
                f"API paths have no trailing slash: send {request.method} to {target}, not {path}.",
            ),
            status=404,
        )
    return JsonResponse(
        error_body("not_found", f"No API endpoint at {path}. The endpoints are listed at /api/schema."),
        status=404,
    )
