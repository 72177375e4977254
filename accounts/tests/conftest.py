"""A local fake of Google's OAuth endpoints (no network), and a clean rate-limit cache per test."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from django.core.cache import cache

CLIENT_ID = "imagineer-test.apps.googleusercontent.com"
CLIENT_SECRET = "imagineer-test-secret"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    """PBKDF2's deliberate slowness would dominate these tests' run time; nothing here depends on it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_rate_limits() -> Iterator[None]:
    """Rate-limit counters live in the cache: one test's failed sign-ins must not block the next."""
    cache.clear()
    yield
    cache.clear()


@dataclass
class FakeGoogle:
    """Google's token and userinfo endpoints on 127.0.0.1, answering for one configurable person."""

    base_url: str = ""
    profile: dict[str, Any] = field(default_factory=dict)
    token_status: int = 200
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    userinfo: dict[str, Any] = field(default_factory=dict)
    userinfo_requests: int = 0

    def person(self, email: str, *, verified: bool = True, name: str = "Ada Lovelace", sub: str | None = None) -> None:
        self.profile = {
            "sub": sub or str(uuid.uuid4().int)[:21],
            "email": email,
            "email_verified": verified,
            "name": name,
            "given_name": name.split()[0],
            "family_name": name.split()[-1],
        }
        # Only the userinfo endpoint has the picture: the flow must call it.
        self.userinfo = {**self.profile, "picture": "https://example.invalid/ada.png"}

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            **self.profile,
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 3600,
            "jti": uuid.uuid4().hex,
        }
        # Received straight from the token endpoint, the ID token's signature is not checked
        # (OpenID Connect Core 3.1.3.7); issuer, audience and expiry are.
        return jwt.encode(claims, "fake-google-signing-key-of-sufficient-length", algorithm="HS256")


@pytest.fixture
def fake_google(settings, monkeypatch) -> Iterator[FakeGoogle]:
    from allauth.socialaccount.providers.google.views import GoogleOAuth2Adapter

    fake = FakeGoogle()
    fake.person("ada@example.com")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = parse_qs(self.rfile.read(length).decode())
            fake.token_requests.append(form)
            if self.path != "/token" or fake.token_status != 200:
                self._json(fake.token_status if fake.token_status != 200 else 404, {"error": "invalid_grant"})
                return
            body = {"access_token": "fake-access-token", "token_type": "Bearer", "expires_in": 3599}
            self._json(200, {**body, "scope": "openid email profile", "id_token": fake.id_token()})

        def do_GET(self) -> None:
            fake.userinfo_requests += 1
            if self.path != "/userinfo" or self.headers.get("Authorization") != "Bearer fake-access-token":
                self._json(401, {"error": "invalid_token"})
                return
            self._json(200, fake.userinfo)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(GoogleOAuth2Adapter, "access_token_url", f"{fake.base_url}/token")
    monkeypatch.setattr(GoogleOAuth2Adapter, "identity_url", f"{fake.base_url}/userinfo")
    monkeypatch.setattr(GoogleOAuth2Adapter, "fetch_userinfo", True)
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            **settings.SOCIALACCOUNT_PROVIDERS["google"],
            "APPS": [{"client_id": CLIENT_ID, "secret": CLIENT_SECRET, "key": ""}],
        }
    }
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
