"""/accounts/: the account page and tokens, allauth's account and third-party pages, Google sign-in.

Spelled out rather than ``include("allauth.urls")``: that adds allauth's deprecated
``social/*`` redirects, and Google's views would fail with a server error where no Google
client is configured; here they answer 404 then.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.socialaccount.providers.google import urls as google_urls
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path

from accounts import views


def google_configured() -> bool:
    return bool(settings.SOCIALACCOUNT_PROVIDERS.get("google", {}).get("APPS"))


def _when_google_configured(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)  # keeps allauth's login_not_required marks
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not google_configured():
            raise Http404("Google sign-in is not configured on this site.")
        return view(request, *args, **kwargs)

    return wrapped


def _google_patterns(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    wrapped: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            wrapped.append(path(str(pattern.pattern), include(_google_patterns(pattern.url_patterns))))
        else:
            wrapped.append(path(str(pattern.pattern), _when_google_configured(pattern.callback), name=pattern.name))
    return wrapped


urlpatterns = [
    path("", views.account_detail, name="account"),
    path("tokens/", views.token_create_view, name="account-token-create"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="account-token-revoke"),
    path("", include("allauth.account.urls")),
    path("3rdparty/", include("allauth.socialaccount.urls")),
    *_google_patterns(google_urls.urlpatterns),
]
