"""Secure defaults: sign-in everywhere, CSRF, headers, rate limits, local sign-up, admin, check --deploy."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client

from accounts import signin
from albums.models import Album, Image
from imagineer.permissions import (
    RolePermission,
    albums_visible,
    can_view,
    images_visible,
    public_albums_view,
    user_role,
)
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()
ROOT = Path(__file__).resolve().parents[2]


def test_pages_need_sign_in_and_send_you_back_afterwards(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"


@pytest.mark.parametrize("path", ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"])
def test_sign_in_pages_are_public(client, path):
    assert client.get(path).status_code == 200


def test_static_assets_are_public(client):
    assert client.get("/static/css/app.css").status_code == 200


def test_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_sign_in_form_needs_csrf():
    UserFactory(username="carol")
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert response.status_code == 403


def test_local_sign_in_by_username_or_email(client):
    UserFactory(username="carol", email="carol@example.com")
    assert client.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"}).status_code == 302
    client.logout()
    response = client.post("/accounts/login/", {"login": "carol@example.com", "password": "pw-test-123"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_failed_sign_ins_slow_a_guesser_but_never_lock_the_owner_out(client, settings):
    """Five wrong passwords make the next attempts wait (2**n seconds after the last failure,
    capped), the right password included, but only for a while: anyone could otherwise lock
    any account. A browser that signed in to the account before is never made to wait."""
    settings.IMAGINEER_LOGIN_DELAY_MAX = 60
    # Every test client comes from 127.0.0.1: keep the per-address limit out of the way.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "100/m/ip"}
    UserFactory(username="carol")
    for _attempt in range(5):
        response = client.post("/accounts/login/", {"login": "carol", "password": "wrong"})
        assert "not correct" in response.content.decode()

    held = client.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert held.status_code == 200
    assert "Too many failed sign-ins for this account: wait 1 second and try again." in held.content.decode()
    assert "_auth_user_id" not in client.session
    UserFactory(username="dave")  # another account from the same address is not held back
    assert client.post("/accounts/login/", {"login": "dave", "password": "pw-test-123"}).status_code == 302
    client.logout()

    time.sleep(1.1)  # the wait after five failures is one second
    owner = Client()
    response = owner.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert response.status_code == 302 and owner.session["_auth_user_id"]
    known_browser = owner.cookies["imagineer_known_browser"].value
    owner.logout()

    # A guesser keeps failing: each failure doubles the wait (here to the 60-second cap) ...
    guesser = Client()
    for _attempt in range(5):
        guesser.post("/accounts/login/", {"login": "carol", "password": "wrong"})
    for _attempt in range(8):
        cache_state = cache.get(signin._cache_key("carol"))
        cache.set(signin._cache_key("carol"), {**cache_state, "last": 0})  # let the guess through
        guesser.post("/accounts/login/", {"login": "carol", "password": "wrong"})
    refused = guesser.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert "wait 60 seconds" in refused.content.decode()
    # ... but the owner's browser, which signed in before, goes straight in.
    returning = Client()
    returning.cookies["imagineer_known_browser"] = known_browser
    response = returning.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert response.status_code == 302 and returning.session["_auth_user_id"]


def test_failed_sign_ins_are_still_limited_per_address(client):
    """The per-address limit (10 failures a minute) holds across accounts: spraying guesses over
    many accounts from one address is stopped there."""
    for n in range(10):
        UserFactory(username=f"spray{n}")
        client.post("/accounts/login/", {"login": f"spray{n}", "password": "wrong"})
    UserFactory(username="eleventh")
    response = client.post("/accounts/login/", {"login": "eleventh", "password": "pw-test-123"})
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_sign_in_requests_are_rate_limited_per_address(client, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    statuses = [client.post("/accounts/login/", {"login": f"u{n}", "password": "x"}).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_local_sign_up_gets_the_default_role(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    assert user_role(User.objects.get(username="erin")) == "viewer"


def test_local_sign_up_respects_the_allow_list(client, settings):
    settings.IMAGINEER_ALLOWED_EMAIL_DOMAINS = ["example.org"]
    response = client.post(
        "/accounts/signup/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password1": "a-long-pass-phrase",
            "password2": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "erin@example.com is not on this site's list of allowed accounts. "
        "Ask the site's administrator to add your address or domain."
    ]
    assert not User.objects.filter(username="erin").exists()


def test_local_sign_up_can_be_closed(client, settings):
    settings.IMAGINEER_LOCAL_SIGNUP = False
    assert b"Sign-up is closed" in client.get("/accounts/signup/").content
    assert b"/accounts/signup/" not in client.get("/accounts/login/").content


def test_every_new_user_gets_the_default_role(settings):
    assert user_role(User.objects.create_user(username="made-in-shell")) == "viewer"
    settings.IMAGINEER_DEFAULT_ROLE = "curator"
    curator = User.objects.create_user(username="first-curator")
    assert user_role(curator) == "curator" and curator.is_staff


def test_user_role_command():
    UserFactory(username="frank", email="frank@example.com")
    call_command("user_role", "frank@example.com", "curator", stdout=open(os.devnull, "w"))  # noqa: SIM115
    frank = User.objects.get(username="frank")
    assert user_role(frank) == "curator" and frank.is_staff


def test_admin_is_for_curators_only(client):
    client.force_login(UserFactory(role="curator"))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/generation/batchtemplate/").status_code == 200

    staff_creator = UserFactory(role="creator")
    staff_creator.is_staff = True  # set by hand: staff without the curator role
    staff_creator.save(update_fields=["is_staff"])
    client.force_login(staff_creator)
    assert client.get("/admin/generation/batchtemplate/").status_code == 302
    assert client.get("/admin/login/").status_code == 403


def test_admin_sign_in_goes_through_the_one_sign_in_page(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_public_albums_are_visible_to_anonymous_visitors_only_when_enabled(settings):
    public, private = AlbumFactory(is_public=True), AlbumFactory(is_public=False)
    shown = AlbumImageFactory(album=public).image
    hidden = ImageFactory()
    anonymous = Client().get("/accounts/login/").wsgi_request.user

    settings.IMAGINEER_PUBLIC_ALBUMS = False
    assert not can_view(anonymous, public)
    assert not albums_visible(anonymous).exists()

    settings.IMAGINEER_PUBLIC_ALBUMS = True
    assert can_view(anonymous, public) and not can_view(anonymous, private)
    assert can_view(anonymous, shown) and not can_view(anonymous, hidden)
    assert list(albums_visible(anonymous, Album.objects.all())) == [public]
    assert list(images_visible(anonymous, Image.objects.all())) == [shown]
    assert albums_visible(UserFactory(), Album.objects.all()).count() == 2


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "imagineer.example.com",
        "IMAGINEER_HTTPS": "true",
        "DJANGO_SETTINGS_MODULE": "imagineer.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_every_post_form_in_the_templates_carries_a_csrf_token():
    """Django refuses a POST without the token; a form that forgot it would simply never work."""
    form = re.compile(r"<form\b[^>]*\bmethod=[\"']post[\"'][^>]*>(.*?)</form>", re.IGNORECASE | re.DOTALL)
    missing = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        for match in form.finditer(template.read_text()):
            # {% csrf_token %}, or the hidden input it renders with the token a view looked up once
            # (the deck page renders hundreds of forms).
            if "csrf_token" not in match.group(1) and 'name="csrfmiddlewaretoken" value="{{' not in match.group(1):
                missing.append(f"{template.relative_to(ROOT)}: {match.group(0)[:80]}")
    assert missing == []


def test_htmx_requests_send_the_csrf_token():
    assert 'hx-headers=\'{"X-CSRFToken": "{{ csrf_token }}"}\'' in (ROOT / "templates" / "base.html").read_text()


def test_public_albums_view_admits_anonymous_visitors_only_when_enabled(rf, settings):
    @public_albums_view
    def page(request):
        return HttpResponse("albums")

    request = rf.get("/albums/")
    request.user = AnonymousUser()
    settings.IMAGINEER_PUBLIC_ALBUMS = False
    refused = page(request)
    assert refused.status_code == 302 and refused["Location"] == "/accounts/login/?next=/albums/"
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    assert page(request).status_code == 200
    assert page.login_required is False  # LoginRequiredMiddleware lets it through to decide


def test_api_views_opt_in_to_anonymous_reads_of_public_albums(rf, settings):
    view = SimpleNamespace(public_albums=True, required_permission=None)
    read, write = rf.get("/api/albums"), rf.post("/api/albums")
    read.user = write.user = AnonymousUser()
    settings.IMAGINEER_PUBLIC_ALBUMS = True
    assert RolePermission().has_permission(read, view)
    assert not RolePermission().has_permission(write, view)
    assert not RolePermission().has_permission(read, SimpleNamespace(required_permission=None))
    settings.IMAGINEER_PUBLIC_ALBUMS = False
    assert not RolePermission().has_permission(read, view)


def test_htmx_request_after_the_session_ended_sends_the_whole_page_to_sign_in(client):
    response = client.get("/runs/active", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/jobs/?page=2")
    assert response.status_code == 401
    assert response["HX-Redirect"] == "/accounts/login/?next=/jobs/%3Fpage%3D2"


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "imagineer.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IMAGINEER_DEFAULT_ROLE": "admin"}, "IMAGINEER_DEFAULT_ROLE"),
        ({"GOOGLE_CLIENT_ID": "x.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": ""}, "GOOGLE_CLIENT_SECRET"),
        ({"DEBUG": "false", "SECRET_KEY": "short", "ALLOWED_HOSTS": "example.com"}, "SECRET_KEY"),
        ({"DEBUG": "false", "SECRET_KEY": "k" * 49 + "x", "ALLOWED_HOSTS": "example.com"}, "SECRET_KEY"),
        ({"DEBUG": "false", "SECRET_KEY": "x" * 49, "ALLOWED_HOSTS": "example.com"}, "SECRET_KEY"),
    ],
)
def test_bad_account_settings_stop_start_up_naming_the_variable(env, variable):
    result = _settings_in_subprocess(env, "1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and variable in result.stderr


def test_a_long_secret_key_starts_in_production_and_any_key_in_development():
    production = {"DEBUG": "false", "ALLOWED_HOSTS": "example.com", "SECRET_KEY": secrets.token_urlsafe(38)}
    assert _settings_in_subprocess(production, "len(settings.SECRET_KEY)").stdout.strip() == "51"
    development = _settings_in_subprocess({"DEBUG": "true", "SECRET_KEY": "short"}, "settings.SECRET_KEY")
    assert development.stdout.strip() == "short", development.stderr


def test_an_allow_list_makes_local_addresses_need_verification():
    result = _settings_in_subprocess(
        {"IMAGINEER_ALLOWED_EMAIL_DOMAINS": "example.org"}, "settings.ACCOUNT_EMAIL_VERIFICATION"
    )
    assert result.stdout.strip() == "mandatory", result.stderr
