"""Project-wide fixtures: every test gets its own MEDIA_ROOT and LORA_ROOT."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LORA_ROOT = tmp_path / "media" / "loras"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(username="maker", email="maker@example.com", password="pw-maker-123")


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture(scope="session", autouse=True)
def _clean_test_broker():
    """Start every test session with an empty broker database (REDIS_URL points at a test DB)."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def celery_worker(transactional_db, tmp_path, settings):
    """Start real Celery worker processes on the test database; all are stopped afterwards."""
    from imagineer.testing import worker_start

    if not settings.REDIS_URL:
        pytest.fail("Worker tests need REDIS_URL (make test sets it).")
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    workers = []

    def start(queues: str, **kwargs):
        worker = worker_start(queues, log_dir=tmp_path, **kwargs)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
