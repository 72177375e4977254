"""Sign-in required everywhere, HTMX-aware."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse


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
