"""The account page: who you are, your role, and your API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST, require_safe

from accounts.forms import TokenCreateForm
from accounts.selectors import token_list
from accounts.services import token_create, token_revoke
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import SignedInRequest, admin_site_has_permission, role_required, user_role


def _account_page(
    request: SignedInRequest, *, form: TokenCreateForm, new_key: str | None = None, status: int = 200
) -> HttpResponse:
    tokens = token_list(user=request.user)
    context = {"form": form, "tokens": tokens, "new_key": new_key, "role": user_role(request.user)}
    return render(request, "accounts/account.html", context, status=status)


# The session key under which a new token's key waits for the one GET that shows it.
NEW_KEY_SESSION_SLOT = "accounts.new_token_key"


@require_safe
@role_required()
def account_detail(request: SignedInRequest) -> HttpResponse:
    # Popped on the first GET after the POST: a reload no longer shows (or re-creates) it.
    return _account_page(request, form=TokenCreateForm(), new_key=request.session.pop(NEW_KEY_SESSION_SLOT, None))


@require_POST
@role_required()
def token_create_view(request: SignedInRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST)
    if not form.is_valid():
        return _account_page(request, form=form, status=400)
    try:
        token, key = token_create(
            user=request.user, name=form.cleaned_data["name"], expires_in_days=form.cleaned_data["expires_in_days"]
        )
    except ApplicationError as error:
        form_add_application_error(form, error)
        return _account_page(request, form=form, status=400)
    # Post/redirect/get: the key waits in the session for the next page view only, which pops
    # it; a reload of that page cannot post the form again or show the key twice.
    request.session[NEW_KEY_SESSION_SLOT] = key
    messages.success(request, f"Token “{token.name}” created. Copy it now: it will not be shown again.")
    return redirect("account")


@require_POST
@role_required()
def token_revoke_view(request: SignedInRequest, pk: int) -> HttpResponse:
    try:
        token_revoke(user=request.user, token_id=pk)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Token revoked: requests that present it are now refused.")
    return redirect("account")


@login_not_required
def admin_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """Replaces the admin's own sign-in form, so that the one (rate-limited) sign-in page is used."""
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = reverse("admin:index")
    if not request.user.is_authenticated:
        return redirect_to_login(next_url)
    if not admin_site_has_permission(request):
        raise PermissionDenied("The admin is for curators.")
    return redirect(next_url)
