"""allauth customisation: the sign-up allow-list, local sign-up switch, and refusal pages that say why."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts import signin
from accounts.services import email_refusal_reason


def _refuse(request: HttpRequest, reason: str) -> ImmediateHttpResponse:
    return ImmediateHttpResponse(render(request, "account/refused.html", {"reason": reason}, status=403))


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.IMAGINEER_LOCAL_SIGNUP

    # Failed sign-ins: allauth keeps the per-address limit; the per-account one is
    # accounts.signin's growing wait, which never refuses the owner for good.
    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        super().pre_authenticate(request, **credentials)
        wait = signin.wait_seconds(request, credentials)
        if wait:
            raise forms.ValidationError(signin.wait_message(wait), code="too_many_login_attempts")

    def authenticate(self, request: HttpRequest, **credentials: Any) -> Any:
        user = super().authenticate(request, **credentials)
        if user is not None:
            signin.failures_clear(credentials)
        return user

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        signin.failure_record(credentials)

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        response = super().post_login(request, user, **kwargs)
        signin.known_browser_remember(request, response, user)
        return response


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # Google sign-ups are governed by the allow-list (checked in pre_social_login), not by
        # the local sign-up switch: a private deployment admits its own Google accounts.
        return True

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        """Refuse every Google sign-in, new or returning, whose verified address the allow-list does not admit."""
        if not (settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS or settings.IMAGINEER_ALLOWED_EMAILS):
            return
        verified = [address.email for address in sociallogin.email_addresses if address.verified]
        if not verified:
            raise _refuse(request, "Google did not confirm a verified email address for this account.")
        reasons = [email_refusal_reason(email) for email in verified]
        if all(reasons):
            raise _refuse(request, str(reasons[0]))

    def authenticate_by_email(self, sociallogin: Any) -> tuple[Any, str] | None:
        """Google's verified address matches an account: sign into it (and link Google to it).

        allauth then wipes the account's password unless the address is verified on our side,
        which locks out anyone who signed up with someone else's address. Accounts made by an
        operator (``createsuperuser``, the admin) have no address rows at all: their address
        was typed by the operator, so it counts as verified and they keep their password.
        """
        found = super().authenticate_by_email(sociallogin)
        if found is not None:
            user, email = found
            if not EmailAddress.objects.filter(user=user).exists():
                EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        return found
