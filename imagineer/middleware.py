"""Requests refused at the door (NUL characters anywhere in the input); headers on every response.

PostgreSQL cannot store NUL (``\\x00``) in text or JSON, so a NUL that reached a query or a
save answered 500 (``/api/batches/1%00``, ``?label=%00``). No field of this application takes
one, so a NUL in the path, a query parameter, a form field or a JSON value is refused here
with a 400 that says where it is, before any view sees it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from imagineer.api import error_body
from imagineer.csp import PERMISSIONS_POLICY

NUL = "\x00"
# A JSON string escape \u0000 (not an escaped backslash followed by "u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _json_nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string holding a NUL in parsed JSON."""
    items: Iterator[tuple[str, Any]]
    if isinstance(value, dict):
        for key in value:
            if NUL in key:
                return f"{path}.{key!r}" if path else repr(key)
        items = ((f"{path}.{key}" if path else key, item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return (path or "(the whole body)") if isinstance(value, str) and NUL in value else None
    for sub_path, item in items:
        found = _json_nul_path(item, sub_path)
        if found:
            return found
    return None


def nul_location(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character ("the query parameter 'label'"), or None.

    Names are shown with repr(), which writes a NUL as ``\\x00``.
    """
    if NUL in request.path:
        return "the URL path"
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in value for value in values):
            return f"the query parameter {key!r}"
    content_type = request.content_type or ""
    if request.method == "POST" and content_type in FORM_TYPES:
        for key, values in request.POST.lists():
            if NUL in key or any(NUL in value for value in values):
                return f"the form field {key!r}"
    elif content_type == "application/json" or content_type.endswith("+json"):
        body = request.body
        if b"\x00" in body:
            return "the JSON body"
        if _JSON_NUL.search(body):
            try:
                return f"the JSON value {_json_nul_path(json.loads(body))}"
            except ValueError:
                return "the JSON body"
    return None


def _bad_request(request: HttpRequest, code: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=400)
    return render(request, "400.html", {"message": message}, status=400)


class RefuseNulMiddleware:
    """Answers 400 to a request with a NUL character in its path, query, form or JSON.

    After AuthenticationMiddleware (the error page shows who is signed in) and before any
    view; reading a form body here is what the view would do anyway (Django keeps it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            where = nul_location(request)
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as error:
            # What the view's own parsing would have answered; the body cannot be read twice.
            return _bad_request(request, "parse_error", f"The request body could not be read: {error}")
        if where:
            message = (
                f"The request contains a NUL character (\\x00, sent as %00 or \\u0000) in {where}; "
                "no field here accepts one. Remove it and send the request again."
            )
            return _bad_request(request, "nul_character", message)
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """``Permissions-Policy``: the browser features no page uses are off for every page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
