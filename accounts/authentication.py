"""``Authorization: Token <key>`` for the API (DRF) and for every other view (middleware)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.services import token_authenticate

KEYWORD = "Token"


def _presented_key(header: bytes) -> str | None:
    """The key from an ``Authorization: Token <key>`` header; None when another scheme is used."""
    parts = header.split()
    if not parts or parts[0].decode(errors="replace").lower() != KEYWORD.lower():
        return None
    if len(parts) != 2:
        raise exceptions.AuthenticationFailed(
            "Send the header as `Authorization: Token <key>`, with no spaces in the key."
        )
    try:
        return parts[1].decode()
    except UnicodeError:
        raise exceptions.AuthenticationFailed("The token contains invalid characters.") from None


class HashedTokenAuthentication(BaseAuthentication):
    """DRF authentication against hashed :class:`accounts.models.APIToken` rows.

    First in DEFAULT_AUTHENTICATION_CLASSES: a token request is never treated as a session
    request, so it needs no CSRF token (there is no cookie an attacker could ride on).
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        key = _presented_key(get_authorization_header(request))
        if key is None:
            return None
        django_request = getattr(request, "_request", request)
        if getattr(django_request, "auth", None) is not None:
            return django_request.user, django_request.auth  # already checked by the middleware
        found = token_authenticate(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return found

    def authenticate_header(self, request: Any) -> str:
        # Makes DRF answer 401 (not 403) to requests without credentials.
        return KEYWORD


class TokenAuthenticationMiddleware:
    """Signs a request in by its token for non-API views too (image files, exports).

    Placed after AuthenticationMiddleware and before LoginRequiredMiddleware. No session is
    created. Unsafe methods on pages still need a CSRF token, which token clients do not have,
    so a token cannot submit page forms; it is meant for reads outside the API.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_AUTHORIZATION", "").encode("iso-8859-1", errors="replace")
        try:
            key = _presented_key(header)
        except exceptions.AuthenticationFailed:
            key = None
        if key is not None:
            found = token_authenticate(key=key)
            if found is not None:
                # DRF's Request reads ``auth`` from the request it wraps (HashedTokenAuthentication).
                request.user, request.auth = found  # type: ignore[attr-defined]
        return self.get_response(request)
