"""/api/health: database, broker, workers per queue, model."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from generation.models import EngineWorker


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_health_is_public_and_reports_each_part(api_as):
    EngineWorker.objects.create(
        hostname="gpu-1", model_id="tiny", device="cpu", loaded=True, is_noise_model=True, last_seen=timezone.now()
    )
    response = api_as(None).get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["model"]["loaded"] is True
    assert body["device"] == "cpu"
    assert set(body["workers"]) >= {"gpu", "labeling", "default"}
    # no worker is running in this test
    assert body["workers"]["gpu"] == {"ok": False, "workers": []}
    assert body["status"] == "degraded"


@pytest.mark.django_db
def test_health_reports_a_dead_broker_as_down(api_as, settings):
    from imagineer.celery import app

    original = app.conf.broker_url
    settings.CELERY_BROKER_URL = app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = api_as(None).get("/api/health")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
    assert response.json()["status"] == "down"


@pytest.mark.slow
def test_health_sees_a_worker_per_queue(celery_worker, api_as):
    for queue in ("gpu", "labeling", "default"):
        celery_worker(queue)
    body = api_as(None).get("/api/health").json()
    assert body["status"] == "ok", body
    assert all(body["workers"][queue]["ok"] for queue in ("gpu", "labeling", "default"))


@pytest.fixture
def cache_on(settings, redis_server):
    """The cache on a private redis-server this test can stop."""
    settings.CACHES = {
        "default": {
            "BACKEND": "imagineer.cache.DegradingRedisCache",
            "LOCATION": redis_server.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    return redis_server


@pytest.mark.django_db
def test_health_names_a_dead_cache_and_answers_503(api_as, cache_on):
    assert api_as(None).get("/api/health").json()["cache"]["ok"] is True
    cache_on.stop()
    response = api_as(None).get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["down"] == ["cache"]
    assert body["cache"]["ok"] is False and body["cache"]["error"]
    assert body["database"]["ok"] is True and body["broker"]["ok"] is True


@pytest.mark.django_db
def test_health_names_both_when_cache_and_broker_are_down(api_as, cache_on, settings):
    from imagineer.celery import app

    cache_on.stop()
    original = app.conf.broker_url
    settings.CELERY_BROKER_URL = app.conf.broker_url = cache_on.url  # the same stopped server
    try:
        response = api_as(None).get("/api/health")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["down"] == ["cache", "broker"]
