"""Google sign-in end to end against a local fake of Google's token and userinfo endpoints."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from accounts.tests.conftest import CLIENT_ID
from imagineer.permissions import user_role
from imagineer.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def google_sign_in(client, fake_google, *, next_url: str = ""):
    """Press “Sign in with Google”, let the (fake) Google answer, follow the callback."""
    start = client.post("/accounts/google/login/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.content
    authorize = urlparse(start["Location"])
    assert authorize.netloc == "accounts.google.com"
    query = parse_qs(authorize.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"]  # PKCE
    assert set(query["scope"][0].split()) == {"openid", "profile", "email"}
    return client.get("/accounts/google/login/callback/", {"code": "fake-code", "state": query["state"][0]})


def test_login_page_shows_google_only_when_configured(client, settings):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Sign in with Google" not in response.content
    assert b'name="password"' in response.content


def test_login_page_shows_google_button_when_configured(client, fake_google):
    response = client.get("/accounts/login/?next=/accounts/")
    assert b"Sign in with Google" in response.content
    assert b'action="/accounts/google/login/?next=%2Faccounts%2F"' in response.content


def test_a_link_to_google_sign_in_asks_to_confirm_with_a_post(client, fake_google):
    """A GET must not start the flow (a third-party page could trigger it): it shows a form that POSTs."""
    response = client.get("/accounts/google/login/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Sign in with Google" in body and 'method="post"' in body and "csrfmiddlewaretoken" in body
    assert fake_google.token_requests == []


def test_new_google_user_is_created_with_the_default_role(client, fake_google):
    response = google_sign_in(client, fake_google, next_url="/accounts/")

    assert response.status_code == 302 and response["Location"] == "/accounts/"
    user = User.objects.get(email="ada@example.com")
    assert user_role(user) == "viewer"
    assert not user.has_usable_password() and not user.is_staff
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    account = SocialAccount.objects.get(user=user, provider="google")
    assert account.uid == fake_google.profile["sub"]
    assert account.extra_data["picture"] == "https://example.invalid/ada.png"  # from the userinfo endpoint
    assert EmailAddress.objects.get(user=user).verified
    (token_request,) = fake_google.token_requests
    assert token_request["code"] == ["fake-code"] and token_request["code_verifier"]
    assert fake_google.userinfo_requests == 1
    assert client.get("/accounts/").status_code == 200  # signed in


def test_default_role_comes_from_the_setting(client, fake_google, settings):
    settings.IMAGINEER_DEFAULT_ROLE = "creator"
    google_sign_in(client, fake_google)
    assert user_role(User.objects.get(email="ada@example.com")) == "creator"


def test_returning_google_user_signs_into_the_same_account(client, fake_google):
    google_sign_in(client, fake_google)
    client.logout()
    response = google_sign_in(client, fake_google)
    assert response.status_code == 302
    assert User.objects.filter(email="ada@example.com").count() == 1


@pytest.mark.parametrize(
    ("domains", "emails", "email", "admitted"),
    [
        (["example.org"], [], "mallory@example.com", False),
        (["example.org"], [], "grace@example.org", True),
        ([], ["ada@example.com"], "ada@example.com", True),
        ([], ["ada@example.com"], "ada@example.com.evil.test", False),
        (["example.org"], ["ada@example.com"], "ADA@Example.com", True),
    ],
)
def test_allow_list(client, fake_google, settings, domains, emails, email, admitted):
    settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS = domains
    settings.IMAGINEER_ALLOWED_EMAILS = emails
    fake_google.person(email)

    response = google_sign_in(client, fake_google)

    if admitted:
        assert response.status_code == 302
        assert User.objects.filter(email__iexact=email).exists()
    else:
        assert response.status_code == 403
        body = response.content.decode()
        assert "not admitted" in body
        assert f"{email} is not on this site&#x27;s list of allowed accounts" in body
        assert not User.objects.filter(email__iexact=email).exists()
        assert client.get("/accounts/").status_code == 302  # not signed in


def test_allow_list_refuses_an_unverified_google_address(client, fake_google, settings):
    settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS = ["example.com"]
    fake_google.person("ada@example.com", verified=False)
    response = google_sign_in(client, fake_google)
    assert response.status_code == 403
    assert b"did not confirm a verified email address" in response.content
    assert not User.objects.filter(email="ada@example.com").exists()


def test_allow_list_also_refuses_returning_users_no_longer_listed(client, fake_google, settings):
    google_sign_in(client, fake_google)
    client.logout()
    settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS = ["example.org"]
    assert google_sign_in(client, fake_google).status_code == 403


def test_google_sign_in_links_an_existing_account_by_verified_email(client, fake_google):
    local = UserFactory(username="ada", email="ada@example.com", role="creator")
    EmailAddress.objects.create(user=local, email="ada@example.com", verified=True, primary=True)

    response = google_sign_in(client, fake_google)

    assert response.status_code == 302
    assert User.objects.filter(email__iexact="ada@example.com").count() == 1
    assert SocialAccount.objects.get(provider="google").user == local
    local.refresh_from_db()
    assert local.check_password("pw-test-123")  # the verified owner keeps their password
    assert user_role(local) == "creator"  # and their role
    assert client.get("/accounts/").context["user"] == local


def test_google_sign_in_links_an_account_made_by_the_operator(client, fake_google):
    """createsuperuser makes no address rows: the operator's address is trusted, the password kept."""
    admin = User.objects.create_superuser("root", "ada@example.com", "pw-root-123")

    assert google_sign_in(client, fake_google).status_code == 302

    assert SocialAccount.objects.get(provider="google").user == admin
    admin.refresh_from_db()
    assert admin.check_password("pw-root-123")


def test_linking_to_an_unverified_local_address_locks_out_its_password(client, fake_google):
    """Someone who signed up with Ada's address (never verified) loses the password when Ada arrives."""
    squatter = UserFactory(username="squatter", email="ada@example.com")
    EmailAddress.objects.create(user=squatter, email="ada@example.com", verified=False, primary=True)

    assert google_sign_in(client, fake_google).status_code == 302

    squatter.refresh_from_db()
    assert not squatter.has_usable_password()


def test_google_error_shows_a_failure_page_and_creates_nobody(client, fake_google):
    fake_google.token_status = 400
    response = google_sign_in(client, fake_google)
    assert response.status_code == 401
    assert b"Sign-in with Google failed" in response.content
    assert not User.objects.filter(email="ada@example.com").exists()


def test_callback_with_a_forged_state_is_refused(client, fake_google):
    client.post("/accounts/google/login/")
    response = client.get("/accounts/google/login/callback/", {"code": "fake-code", "state": "forged"})
    assert response.status_code == 401
    assert b"Sign-in with Google failed" in response.content
    assert fake_google.token_requests == []
    assert not User.objects.exists()
