"""What an API token reaches: the API, and reads of a few file views; never accounts, admin or forms.

The attack this guards against (issue 12, item 1): with only a leaked token, read a page for
a CSRF token, add the attacker's address to the account, reset the password through it and
sign in; or mint a never-expiring token so that revoking the leaked one changes nothing.
"""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.test import Client

from accounts.authentication import TOKEN_READABLE_VIEWS
from accounts.models import APIToken
from accounts.services import token_create
from accounts.tests.matrix import url_routes
from generation.models import GenerationJob
from imagineer.tests.factories import AlbumImageFactory, UserFactory

pytestmark = pytest.mark.django_db

# A script can set any cookie it likes, so CSRF's double submit does not stop it: a self-made
# cookie and the same value in the form pass the check. Refusing the token is what stops it.
FORGED_CSRF = "a" * 32


def attacker_with(key: str) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    client.cookies[settings.CSRF_COOKIE_NAME] = FORGED_CSRF
    return client


def test_a_leaked_token_cannot_take_over_its_owners_account(mailoutbox):
    victim = UserFactory(username="victim", email="victim@example.com", role="creator")
    EmailAddress.objects.create(user=victim, email="victim@example.com", verified=True, primary=True)
    _, key = token_create(user=victim, name="ci script")
    attacker = attacker_with(key)

    # 1. Read the email page for a CSRF token: refused, and no CSRF cookie or form token given.
    page = attacker.get("/accounts/email/")
    assert page.status_code == 403
    assert settings.CSRF_COOKIE_NAME not in page.cookies
    assert b"csrfmiddlewaretoken" not in page.content
    # 2. Add the attacker's address.
    added = attacker.post(
        "/accounts/email/",
        {"action_add": "", "email": "attacker@evil.test", "csrfmiddlewaretoken": FORGED_CSRF},
    )
    assert added.status_code == 403
    assert list(EmailAddress.objects.filter(user=victim).values_list("email", flat=True)) == ["victim@example.com"]
    # 3. Ask for a password reset for that address: with the token, refused; without it, the
    # address belongs to no account, so no reset link for the victim's account is sent anywhere.
    assert attacker.post(
        "/accounts/password/reset/", {"email": "attacker@evil.test", "csrfmiddlewaretoken": FORGED_CSRF}
    ).status_code in {403}
    Client().post("/accounts/password/reset/", {"email": "attacker@evil.test"})
    assert not [mail for mail in mailoutbox if "/password/reset/key/" in mail.body]
    # 4. Change the password directly.
    changed = attacker.post(
        "/accounts/password/change/",
        {"oldpassword": "x", "password1": "attacker-pass-99", "password2": "attacker-pass-99"},
    )
    assert changed.status_code == 403
    victim.refresh_from_db()
    assert victim.check_password("pw-test-123") and not victim.check_password("attacker-pass-99")
    # 5. Mint a never-expiring token, so that revoking the leaked one does not cut the attacker off.
    minted = attacker.post("/accounts/tokens/", {"name": "persist", "csrfmiddlewaretoken": FORGED_CSRF})
    assert minted.status_code == 403
    assert APIToken.objects.filter(user=victim).count() == 1
    # 6. Submit a page form.
    generated = attacker.post(
        "/generate/",
        {
            "prompt": "owl",
            "width": 64,
            "height": 64,
            "steps": 2,
            "guidance_scale": 7,
            "csrfmiddlewaretoken": FORGED_CSRF,
        },
    )
    assert generated.status_code == 403
    assert not GenerationJob.objects.exists()
    # The refusal says what a token is for.
    assert "API tokens are accepted by the API" in page.content.decode()


def test_a_curators_token_does_not_open_the_admin():
    curator = UserFactory(role="curator", is_staff=True)
    _, key = token_create(user=curator, name="ops")
    attacker = attacker_with(key)
    assert attacker.get("/admin/").status_code == 403
    assert attacker.get("/admin/generation/batchtemplate/").status_code == 403
    response = attacker.post("/admin/auth/user/add/", {"csrfmiddlewaretoken": FORGED_CSRF, "username": "mole"})
    assert response.status_code == 403


def test_tokens_get_no_csrf_cookie_even_from_the_browsable_api():
    _, key = token_create(user=UserFactory(role="creator"), name="ci")
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/albums", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert "sessionid" not in response.cookies


def test_the_api_still_takes_token_writes():
    _, key = token_create(user=UserFactory(role="creator"), name="ci")
    api = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    response = api.post("/api/generate", {"prompt": "owl", "width": 64, "height": 64}, content_type="application/json")
    assert response.status_code == 202, response.content
    assert GenerationJob.objects.count() == 1


def test_token_reads_files_but_not_with_unsafe_methods():
    membership = AlbumImageFactory()
    _, key = token_create(user=UserFactory(), name="downloads")
    reader = attacker_with(key)
    assert reader.get(f"/images/{membership.image_id}/file").status_code == 200
    assert reader.head(f"/images/{membership.image_id}/thumbnail").status_code == 200
    assert reader.get(f"/albums/{membership.album_id}/download.zip").status_code == 200
    assert reader.post(f"/images/{membership.image_id}/file", {"csrfmiddlewaretoken": FORGED_CSRF}).status_code == 403
    bad = Client(HTTP_AUTHORIZATION="Token imt_not-a-real-key-not-a-real-key-not-a-real-key-xx")
    refused = bad.get(f"/images/{membership.image_id}/file")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"


def _example_path(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "x" if m.group(1) in {"slug", "key", "uidb36"} else "1", route)


def test_every_page_outside_the_short_list_refuses_a_token():
    """Every non-API route of the urlconf, GET and POST, with a curator's token."""
    curator = UserFactory(role="curator", is_staff=True, is_superuser=True)
    _, key = token_create(user=curator, name="everything")
    client = attacker_with(key)
    wrong = []
    seen = 0
    for route, callback in url_routes():
        if getattr(callback, "cls", None) is not None or "^" in route or "(?P" in route:
            continue  # DRF views and regex routes (the admin's) authenticate for themselves or below
        path = _example_path(route)
        for method in ("GET", "POST"):
            response = client.generic(
                method, path, f"csrfmiddlewaretoken={FORGED_CSRF}", content_type="application/x-www-form-urlencoded"
            )
            name = response.wsgi_request.resolver_match.view_name if response.wsgi_request.resolver_match else ""
            seen += 1
            allowed = name in TOKEN_READABLE_VIEWS and method == "GET"
            if allowed != (response.status_code != 403) or settings.CSRF_COOKIE_NAME in response.cookies:
                wrong.append((method, path, name, response.status_code))
    assert seen > 60
    assert wrong == []
