"""Personal API tokens: created on the account page, shown once, stored hashed, used, revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import APIToken
from accounts.services import token_create
from imagineer.tests.factories import ImageFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("accounts.tests.urls")]
KEY = re.compile(r"imt_[A-Za-z0-9_-]{43}")


def token_client(key: str) -> Client:
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")


def test_created_token_is_shown_once_and_stored_only_as_a_hash(client):
    user = UserFactory(role="creator")
    client.force_login(user)

    response = client.post("/accounts/tokens/", {"name": "laptop script", "expires_in_days": ""})

    # Post/redirect/get: the key is on the page the redirect leads to, once.
    assert response.status_code == 302 and response["Location"] == "/accounts/"
    shown = client.get("/accounts/").content.decode()
    key = KEY.search(shown).group(0)
    assert 'data-copy="#new-token"' in shown
    token = APIToken.objects.get(user=user)
    assert token.name == "laptop script" and token.expires_at is None
    assert token.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert token.prefix == key[:12]
    stored = [str(value) for value in APIToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(key in value for value in stored)
    assert "accounts.new_token_key" not in client.session
    page = client.get("/accounts/").content.decode()
    assert key not in page and token.prefix in page and "laptop script" in page


def test_token_form_errors_are_shown_next_to_the_field(client):
    client.force_login(UserFactory())
    response = client.post("/accounts/tokens/", {"name": "  ", "expires_in_days": "7"})
    assert response.status_code == 400
    assert response.context["form"].errors.keys() == {"name", "expires_in_days"}
    assert not APIToken.objects.exists()


def test_token_authenticates_the_api_without_session_or_csrf():
    user = UserFactory(role="creator")
    _, key = token_create(user=user, name="ci")
    api = token_client(key)

    read = api.get("/probe/")
    write = api.post("/probe/", {}, content_type="application/json")

    assert read.status_code == 200 and read.json() == {"user": user.username, "auth": "APIToken"}
    assert write.status_code == 201
    assert "sessionid" not in read.cookies
    assert APIToken.objects.get(user=user).last_used_at is not None


def test_token_acts_with_its_users_role():
    _, key = token_create(user=UserFactory(role="viewer"), name="read only")
    api = token_client(key)
    assert api.get("/probe/").status_code == 200
    assert api.post("/probe/", {}, content_type="application/json").status_code == 403


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Token imt_not-a-real-key-not-a-real-key-not-a-real-key-xx", 401),
        ("Token", 401),
        ("Token two parts", 401),
        ("Bearer whatever", 401),  # another scheme: treated as no credentials
    ],
)
def test_requests_without_a_valid_token_are_refused(header, status):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client(**headers).get("/probe/")
    assert response.status_code == status
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}


def test_revoked_token_stops_working(client):
    user = UserFactory(role="creator")
    token, key = token_create(user=user, name="old")
    assert token_client(key).get("/probe/").status_code == 200
    client.force_login(user)

    response = client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)

    assert "Token revoked" in response.content.decode()
    assert not APIToken.objects.filter(pk=token.pk).exists()
    assert token_client(key).get("/probe/").status_code == 401


def test_nobody_revokes_someone_elses_token(client):
    token, key = token_create(user=UserFactory(), name="mine")
    client.force_login(UserFactory(role="curator"))
    response = client.post(f"/accounts/tokens/{token.pk}/revoke/", follow=True)
    assert "No such token on your account" in response.content.decode()
    assert token_client(key).get("/probe/").status_code == 200


def test_expired_token_and_inactive_user_are_refused():
    expiring, expiring_key = token_create(user=UserFactory(), name="short", expires_in_days=1)
    APIToken.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    inactive = UserFactory()
    _, inactive_key = token_create(user=inactive, name="gone")
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])

    assert token_client(expiring_key).get("/probe/").status_code == 401
    assert token_client(inactive_key).get("/probe/").status_code == 401


def test_token_opens_no_account_page_and_cannot_submit_forms():
    user = UserFactory()
    _, key = token_create(user=user, name="downloads")
    pages = token_client(key)

    assert pages.get("/accounts/").status_code == 403  # tokens read files, not account pages
    assert pages.post("/accounts/tokens/", {"name": "sneaky"}).status_code == 403
    assert APIToken.objects.filter(user=user).count() == 1


def test_session_writes_to_the_api_need_csrf():
    user = UserFactory(role="creator")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/probe/").status_code == 200
    assert browser.post("/probe/", {}, content_type="application/json").status_code == 403


def test_anonymous_cannot_reach_the_account_page(client):
    assert client.get("/accounts/").status_code == 302
    response = client.post("/accounts/tokens/", {"name": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not APIToken.objects.exists()


def test_token_downloads_image_files_outside_the_api():
    _, key = token_create(user=UserFactory(), name="downloads")
    image = ImageFactory()
    response = token_client(key).get(f"/images/{image.pk}/file")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert Client().get(f"/images/{image.pk}/file").status_code == 302
