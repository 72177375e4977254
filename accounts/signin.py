"""Failed sign-ins per account: a growing wait for strangers, never a lockout of the owner.

A per-account limit that refuses even the right password lets anyone lock anyone out by
typing a wrong one five times. Here, after ``IMAGINEER_LOGIN_FAILURES_PER_ACCOUNT`` failures
for one account, each further attempt from a browser that has not signed in to that account
before must wait ``2**(failures - limit)`` seconds after the last failure, at most
``IMAGINEER_LOGIN_DELAY_MAX``. A guesser is slowed to one try per that many seconds; the
owner waits at most that long on a new browser and not at all on one that signed in before
(a signed cookie set at sign-in). The per-address limit (allauth's ``login_failed`` by ip)
still holds for everyone. A successful sign-in clears the account's count.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

KNOWN_BROWSER_COOKIE = "imagineer_known_browser"
KNOWN_BROWSER_SALT = "accounts.signin.known-browser"
KNOWN_BROWSER_MAX_AGE = 365 * 24 * 3600
KNOWN_BROWSER_KEEP = 5  # accounts remembered per browser
FAILURES_FORGOTTEN_AFTER = 3600  # seconds after the last failure


def _login_of(credentials: dict[str, Any]) -> str:
    return str(credentials.get("email") or credentials.get("username") or "").strip().lower()


def _cache_key(login: str) -> str:
    return "signin-failures:" + hashlib.sha256(login.encode()).hexdigest()


def _user_id_of(login: str) -> int | None:
    if not login:
        return None
    users = get_user_model().objects
    if "@" in login:
        found = EmailAddress.objects.filter(email__iexact=login).values_list("user_id", flat=True).first()
        return found or users.filter(email__iexact=login).values_list("pk", flat=True).first()
    return users.filter(username__iexact=login).values_list("pk", flat=True).first()


def _known_user_ids(request: HttpRequest) -> list[int]:
    raw = request.COOKIES.get(KNOWN_BROWSER_COOKIE)
    if not raw:
        return []
    try:
        value = signing.loads(raw, salt=KNOWN_BROWSER_SALT, max_age=KNOWN_BROWSER_MAX_AGE)
    except signing.BadSignature:
        return []
    return [int(pk) for pk in value if isinstance(pk, int)] if isinstance(value, list) else []


def wait_seconds(request: HttpRequest, credentials: dict[str, Any]) -> int:
    """Seconds this attempt must still wait; 0 when it may go ahead."""
    login = _login_of(credentials)
    state = cache.get(_cache_key(login)) if login else None
    if not state:
        return 0
    excess = state["failures"] - settings.IMAGINEER_LOGIN_FAILURES_PER_ACCOUNT
    if excess < 0:
        return 0
    wait = min(2.0**excess, float(settings.IMAGINEER_LOGIN_DELAY_MAX)) - (time.time() - state["last"])
    if wait <= 0:
        return 0
    known = _known_user_ids(request)
    if known and _user_id_of(login) in known:
        return 0
    return math.ceil(wait)


def failure_record(credentials: dict[str, Any]) -> None:
    login = _login_of(credentials)
    if not login:
        return
    key = _cache_key(login)
    state = cache.get(key) or {"failures": 0}
    cache.set(key, {"failures": state["failures"] + 1, "last": time.time()}, FAILURES_FORGOTTEN_AFTER)


def failures_clear(credentials: dict[str, Any]) -> None:
    login = _login_of(credentials)
    if login:
        cache.delete(_cache_key(login))


def known_browser_remember(request: HttpRequest, response: HttpResponse, user: Any) -> None:
    """Mark this browser as one that signed in to ``user``: its attempts are never made to wait."""
    others = [pk for pk in _known_user_ids(request) if pk != user.pk]
    ids = [*others[-(KNOWN_BROWSER_KEEP - 1) :], user.pk]
    response.set_cookie(
        KNOWN_BROWSER_COOKIE,
        signing.dumps(ids, salt=KNOWN_BROWSER_SALT),
        max_age=KNOWN_BROWSER_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def wait_message(seconds: int) -> str:
    return (
        f"Too many failed sign-ins for this account: wait {seconds} second{'s' if seconds != 1 else ''} "
        "and try again. (A browser that has signed in to this account before is not made to wait.)"
    )
