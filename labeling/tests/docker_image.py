"""Build the test double of the labeling image (no registry: busybox-static rootfs), and the
Docker engine the tests and the benchmark use (DOCKER_HOST, else scripts/ensure-docker.sh)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker
from django.conf import settings

TEST_IMAGE = "imagineer-test-claude:latest"
CONTEXT_LABEL = "imagineer.test-context"
FAKE_DIR = Path(__file__).parent / "fake_claude"
ENTRYPOINT = Path(settings.BASE_DIR) / "docker" / "claude-cli" / "imagineer-label"
ENSURE_DOCKER = Path(settings.BASE_DIR) / "scripts" / "ensure-docker.sh"


def docker_host_ensure() -> str:
    """DOCKER_HOST as `make test` exports it; when unset, start the test engine and use it."""
    host = os.environ.get("DOCKER_HOST")
    if not host:
        completed = subprocess.run(["bash", str(ENSURE_DOCKER)], capture_output=True, text=True, timeout=900)
        if completed.returncode != 0:
            raise RuntimeError(f"scripts/ensure-docker.sh failed:\n{completed.stderr[-3000:]}")
        host = completed.stdout.strip().splitlines()[-1].removeprefix("DOCKER_HOST=")
        os.environ["DOCKER_HOST"] = host
    return host


def _busybox() -> Path:
    found = shutil.which("busybox") or "/bin/busybox"
    path = Path(found).resolve()
    if not path.is_file():
        raise RuntimeError("busybox-static is missing: run scripts/ensure-docker.sh (it installs it).")
    return path


def fake_image_build(client: docker.DockerClient) -> str:
    """Build TEST_IMAGE unless an image from the same context is already there; returns its tag."""
    files = {
        "Dockerfile": (FAKE_DIR / "Dockerfile").read_bytes(),
        "claude": (FAKE_DIR / "claude").read_bytes(),
        "imagineer-label": ENTRYPOINT.read_bytes(),
        "busybox": _busybox().read_bytes(),
    }
    digest = hashlib.sha256(b"".join(hashlib.sha256(data).digest() for _, data in sorted(files.items()))).hexdigest()
    try:
        if client.images.get(TEST_IMAGE).labels.get(CONTEXT_LABEL) == digest:
            return TEST_IMAGE
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644 if name == "Dockerfile" else 0o755
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(
        fileobj=context,
        custom_context=True,
        tag=TEST_IMAGE,
        pull=False,
        rm=True,
        forcerm=True,
        network_mode="none",
        labels={CONTEXT_LABEL: digest},
    )
    return TEST_IMAGE
