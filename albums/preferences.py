"""The viewer's NSFW blur preference.

Kept in the session (this sign-in) and a long-lived cookie (the next sign-ins on this
browser), so it needs no table: blurring is a display choice, not account data.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

NSFW_BLUR_SESSION_KEY = "nsfw_blur"
NSFW_BLUR_COOKIE = "imagineer_nsfw_blur"
_COOKIE_MAX_AGE = 365 * 24 * 3600


def nsfw_blur_enabled(request: HttpRequest) -> bool:
    """Blur NSFW images unless this viewer turned it off (blurring is the default)."""
    session = getattr(request, "session", None)
    if session is not None and NSFW_BLUR_SESSION_KEY in session:
        return bool(session[NSFW_BLUR_SESSION_KEY])
    return request.COOKIES.get(NSFW_BLUR_COOKIE, "1") != "0"


def nsfw_blur_set(request: HttpRequest, response: HttpResponse, *, enabled: bool) -> None:
    request.session[NSFW_BLUR_SESSION_KEY] = enabled
    response.set_cookie(
        NSFW_BLUR_COOKIE, "1" if enabled else "0", max_age=_COOKIE_MAX_AGE, httponly=True, samesite="Lax"
    )
