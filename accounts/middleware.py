"""Sign-in required everywhere (HTMX-aware); what an API token may reach outside the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts.authentication import KEYWORD, READ_METHODS, TOKEN_READABLE_VIEWS, presented_key, presents_token
from accounts.services import token_authenticate
from imagineer.api_fallback import FALLBACK_NAME


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Django's, except for HTMX requests (polling partials, inline forms) whose session ended:
    a redirect would swap the sign-in page into a fragment, so the whole page is sent to sign
    in instead (``HX-Redirect``), coming back to the page the user was on."""

    # Django's stub says a redirect; Django itself returns whatever this returns (here a 401).
    def handle_no_permission(self, request: HttpRequest, view_func: Any) -> HttpResponse:  # type: ignore[override]
        if request.headers.get("HX-Request") != "true":
            return super().handle_no_permission(request, view_func)
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        back_to = current.path + (f"?{current.query}" if current.query else "") if current.path else "/"
        login = redirect_to_login(back_to, self.get_login_url(view_func), self.get_redirect_field_name(view_func))
        response = HttpResponse(status=401)
        response["HX-Redirect"] = login["Location"]
        return response


def _is_api_view(view_func: Callable[..., Any]) -> bool:
    cls = getattr(view_func, "cls", None)
    return isinstance(cls, type) and issubclass(cls, APIView)


def _refusal(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = KEYWORD
    return response


class TokenScopeMiddleware:
    """Decides what a token request may reach outside DRF (see :mod:`accounts.authentication`).

    Placed after AuthenticationMiddleware and before LoginRequiredMiddleware; no session is
    created. DRF views authenticate tokens themselves (``HashedTokenAuthentication``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if presents_token(request):
            # CsrfViewMiddleware (outside this one) would set the cookie on the way out.
            request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        match = request.resolver_match
        # Unknown /api/ URLs answer the API's JSON 404 (imagineer.api_fallback) to a token too.
        if not presents_token(request) or _is_api_view(view_func) or (match and match.url_name == FALLBACK_NAME):
            return None
        if match is None or match.view_name not in TOKEN_READABLE_VIEWS:
            return _refusal(
                403,
                "API tokens are accepted by the API (/api/) and by file downloads only, never by account "
                "pages, the admin or forms. Sign in with a browser for this page.",
            )
        if request.method not in READ_METHODS:
            return _refusal(403, "Outside the API, an API token may only read (GET or HEAD).")
        try:
            key = presented_key(request.META["HTTP_AUTHORIZATION"].encode("iso-8859-1", errors="replace"))
        except exceptions.AuthenticationFailed as error:
            return _refusal(401, str(error.detail))
        found = token_authenticate(key=key or "")
        if found is None:
            return _refusal(401, "Invalid, expired or revoked token.")
        # DRF's Request reads ``auth`` from the request it wraps (HashedTokenAuthentication).
        request.user, request.auth = found  # type: ignore[attr-defined]
        return None
