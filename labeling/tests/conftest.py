"""Labeling fixtures: the real test Docker engine, the test image, credentials, marked images.

A test image's behaviour (see fake_claude/claude) is chosen by a marker written into the PNG,
so one album can hold images that answer well, badly, slowly or not at all.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import docker
import pytest
from django.conf import settings as django_settings
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from imagineer.tests.factories import ImageFactory
from labeling.backends import claude_docker
from labeling.tests.docker_image import docker_host_ensure, fake_image_build

SECRET_ACCESS = "sk-ant-oat01-TEST-ACCESS-5e3a91c4d2b7"
SECRET_REFRESH = "sk-ant-ort01-TEST-REFRESH-77a0c1f9e8d6"


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    docker_host_ensure()
    client = docker.from_env(timeout=60)
    client.ping()
    return client


@pytest.fixture(scope="session")
def claude_test_image(docker_client) -> str:
    return fake_image_build(docker_client)


@pytest.fixture
def credentials_file(tmp_path) -> Path:
    # Laid out as the CLI keeps it, so that HOME=<tmp>/home serves the claude-cli backend too.
    path = tmp_path / "home" / ".claude" / ".credentials.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"claudeAiOauth": {"accessToken": SECRET_ACCESS, "refreshToken": SECRET_REFRESH}}))
    path.chmod(0o644)  # the container's user (uid 1000) reads it through the read-only mount
    return path


@pytest.fixture
def claude_docker_settings(settings, claude_test_image, credentials_file, monkeypatch) -> dict[str, str]:
    """Point the claude-docker backend at the test image; returns the same as worker env vars."""
    values = {
        "IMAGINEER_LABELER": "claude-docker",
        "IMAGINEER_CLAUDE_IMAGE": claude_test_image,
        "IMAGINEER_CLAUDE_NETWORK": "none",
        "IMAGINEER_CLAUDE_CREDENTIALS": str(credentials_file),
        "IMAGINEER_LABEL_TIMEOUT": "20",
        "IMAGINEER_LABEL_MEMORY_MB": "128",
        "IMAGINEER_LABEL_PIDS_LIMIT": "64",
    }
    settings.IMAGINEER_LABELER = "claude-docker"
    settings.IMAGINEER_CLAUDE_IMAGE = claude_test_image
    settings.IMAGINEER_CLAUDE_NETWORK = "none"
    settings.IMAGINEER_CLAUDE_CREDENTIALS = credentials_file
    settings.IMAGINEER_LABEL_TIMEOUT = 20
    settings.IMAGINEER_LABEL_MEMORY_MB = 128
    settings.IMAGINEER_LABEL_PIDS_LIMIT = 64
    return values


@pytest.fixture
def no_leftover_containers(docker_client):
    yield
    left = docker_client.containers.list(all=True, filters={"label": claude_docker.CONTAINER_LABEL})
    assert left == [], f"labeling containers left behind: {[c.name for c in left]}"


def marked_png(path: Path, mode: str | None, *, size=(24, 16), color=(200, 30, 30)) -> Path:
    """A PNG whose text chunk tells the test double of the CLI how to answer."""
    info = PngInfo()
    if mode:
        info.add_text("imagineer-fake", f"imagineer-fake-mode:{mode}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, color).save(path, pnginfo=info)
    return path


def marked_image(mode: str | None = None, **kwargs):
    """An Image row whose file answers in ``mode`` (good when None)."""
    name = f"outputs/labeling/{mode or 'good'}-{uuid.uuid4().hex[:12]}.png"
    marked_png(Path(django_settings.MEDIA_ROOT) / name, mode)
    return ImageFactory(file=name, width=24, height=16, **kwargs)
