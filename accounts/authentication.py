"""``Authorization: Token <key>``: the API (DRF), and reads of a short list of file views.

A token is a credential for scripts. It authenticates the API (every method: that is what
it is for) and, outside the API, only GET/HEAD of the views in :data:`TOKEN_READABLE_VIEWS`
(files and exports a script downloads), enforced by
:class:`accounts.middleware.TokenScopeMiddleware`. Any other page, every ``/accounts/`` page and the
admin refuse a request that presents a token, whatever else it carries, and a token request
is never given a CSRF cookie. So a leaked token cannot change its owner's email address or
password, mint more tokens, or submit page forms: revoking it cuts the holder off.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.services import token_authenticate

KEYWORD = "Token"
# URL names of the non-API views a token may read (GET/HEAD). Keep it short: files only.
TOKEN_READABLE_VIEWS = frozenset(
    {
        "albums:image-file",
        "albums:image-thumbnail",
        "albums:album-download",
        "training:dataset-export",
        "training:checkpoint-file",
        "training:sample-file",
    }
)
READ_METHODS = frozenset({"GET", "HEAD"})


def presented_key(header: bytes) -> str | None:
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


def presents_token(request: HttpRequest) -> bool:
    """Whether the request carries ``Authorization: Token ...`` (valid or not)."""
    scheme = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    return bool(scheme) and scheme[0].lower() == KEYWORD.lower()


class HashedTokenAuthentication(BaseAuthentication):
    """DRF authentication against hashed :class:`accounts.models.APIToken` rows.

    First in DEFAULT_AUTHENTICATION_CLASSES: a token request is never treated as a session
    request, so it needs no CSRF token (there is no cookie an attacker could ride on).
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        key = presented_key(get_authorization_header(request))
        if key is None:
            return None
        found = token_authenticate(key=key)
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return found

    def authenticate_header(self, request: Any) -> str:
        # Makes DRF answer 401 (not 403) to requests without credentials.
        return KEYWORD
