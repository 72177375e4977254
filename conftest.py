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


@pytest.fixture
def api_as(db, settings):
    """``api_as("creator")``: a DRF APIClient signed in (session) as a new user with that role;
    ``api_as(None)`` is anonymous, ``api_as("superuser")`` an administrator."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    # These users sign in without a password: skip the deliberately slow hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    from imagineer.tests.factories import UserFactory

    class RoleClient(APIClient):
        """An APIClient that remembers whom it signed in as (None: anonymous)."""

        user: User | None = None

    def make(role: str | None = "creator", **user_fields) -> RoleClient:
        client = RoleClient()
        if role == "superuser":
            client.user = UserFactory.create(role="curator", is_superuser=True, is_staff=True, **user_fields)
        elif role is not None:
            client.user = UserFactory.create(role=role, **user_fields)
        if client.user is not None:
            client.force_login(client.user)
        return client

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The built-in tiny SD1.5-shaped model, built once per test session for every app's tests."""
    from generation.engine.tiny import tiny_model_build

    return tiny_model_build(tmp_path_factory.mktemp("models") / "tiny-sd15")


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server (no persistence) this test may stop and restart; stopped afterwards."""
    from imagineer.testing import redis_server_start

    server = redis_server_start(log_dir=tmp_path)
    yield server
    server.stop()
