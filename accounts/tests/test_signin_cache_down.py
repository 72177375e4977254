"""Sign-in with the cache's Redis down: the rate limiter degrades, sign-in does not fail."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from imagineer.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_on(settings, redis_server):
    settings.CACHES = {
        "default": {
            "BACKEND": "imagineer.cache.DegradingRedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    return redis_server


def test_sign_in_works_while_the_cache_is_down(client, cache_on):
    UserFactory(username="carol")
    cache.set("probe", 1)
    assert cache.get("probe") == 1  # really on that server
    cache_on.stop()
    assert client.get("/accounts/login/").status_code == 200
    wrong = client.post("/accounts/login/", {"login": "carol", "password": "wrong"})
    assert wrong.status_code == 200 and "password" in wrong.content.decode().lower()
    response = client.post("/accounts/login/", {"login": "carol", "password": "pw-test-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_rate_limits_count_again_when_the_cache_is_back(client, cache_on, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    cache_on.stop()
    # Down: nothing counts, nothing fails.
    assert [client.post("/accounts/login/", {"login": "x", "password": "y"}).status_code for _ in range(4)] == [200] * 4
    cache_on.start()
    statuses = [client.post("/accounts/login/", {"login": f"u{n}", "password": "x"}).status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
