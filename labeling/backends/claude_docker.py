"""Claude Code CLI in one ephemeral Docker container per image, through the ``docker`` SDK.

Each container: the configured image (never pulled), ``--init``, only the one image file
mounted read-only, the credentials file mounted read-only (the image's entrypoint copies it
into the tmpfs home, where the CLI may rewrite it), a read-only root filesystem, memory and
process limits, every capability dropped, no-new-privileges, a fixed non-root user. It is
killed on timeout and always removed.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from django.conf import settings
from docker.types import Mount

from labeling.backends.base import LabelerHealth, LabelError, LabelResult, TransientLabelError, prompt_build
from labeling.backends.cli import ProcessOutput, Redactor, claude_args, output_interpret

logger = logging.getLogger(__name__)

NAME = "claude-docker"
CONTAINER_USER = "1000:1000"  # the node user of node:20-slim
CONTAINER_HOME = "/home/node"
CONTAINER_IMAGE_DIR = "/images"
CONTAINER_CREDENTIALS = "/run/imagineer/credentials.json"
CONTAINER_LABEL = "imagineer.labeler"
MAX_OUTPUT_BYTES = 2 * 1024 * 1024
_ENGINE_ERRORS = (requests.exceptions.ConnectionError, docker.errors.DockerException)

_clients: dict[int, docker.DockerClient] = {}
_clients_lock = threading.Lock()


def docker_client() -> docker.DockerClient:
    """One client per process (Celery's prefork children each make their own after the fork)."""
    pid = os.getpid()
    with _clients_lock:
        client = _clients.get(pid)
        if client is None:
            try:
                client = docker.from_env(timeout=30)
            except docker.errors.DockerException as exc:
                raise TransientLabelError(
                    f"The Docker engine is not answering ({_engine_address()}): {exc}", code="engine_unavailable"
                ) from None
            _clients[pid] = client
        return client


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def container_image_name(image_path: Path) -> str:
    """The file's name inside the container: fixed, so host paths never reach the model."""
    suffix = image_path.suffix.lower()
    return f"image{suffix if suffix.isascii() and suffix[1:].isalnum() else ''}"


class ClaudeDockerLabeler:
    name = NAME

    def __init__(
        self,
        *,
        image: str | None = None,
        credentials_path: Path | None = None,
        timeout: int | None = None,
        network: str | None = None,
        memory_mb: int | None = None,
        pids_limit: int | None = None,
    ):
        self.image = image or settings.IMAGINEER_CLAUDE_IMAGE
        self.credentials_path = Path(credentials_path or settings.IMAGINEER_CLAUDE_CREDENTIALS)
        self.timeout = timeout or settings.IMAGINEER_LABEL_TIMEOUT
        self.network = network or settings.IMAGINEER_CLAUDE_NETWORK
        self.memory_mb = memory_mb or settings.IMAGINEER_LABEL_MEMORY_MB
        self.pids_limit = pids_limit or settings.IMAGINEER_LABEL_PIDS_LIMIT

    def label(self, image_path: Path, prompt_type: str = "default") -> LabelResult:
        inside = f"{CONTAINER_IMAGE_DIR}/{container_image_name(image_path)}"
        prompt = prompt_build(prompt_type, inside)
        output = self.run(image_path, claude_args(prompt))
        return output_interpret(
            output,
            prompt_type=prompt_type,
            source=NAME,
            default_model="claude (model not reported)",
            redact=Redactor(self.credentials_path),
        )

    def run(self, image_path: Path, args: list[str]) -> ProcessOutput:
        """Run the image's entrypoint with ``args`` in a fresh container; always removes it."""
        image_path = Path(image_path).resolve()
        if not image_path.is_file():
            raise LabelError(f"Image file {image_path.name} is missing from the media folder.", code="file_missing")
        if not self.credentials_path.is_file():
            raise LabelError(
                f"Claude credentials not found at {self.credentials_path}: run `claude setup-token` on this host "
                "or set IMAGINEER_CLAUDE_CREDENTIALS.",
                code="credentials_missing",
            )
        client = docker_client()
        container = self._create(client, image_path, args)
        redact = Redactor(self.credentials_path)
        try:
            try:
                container.start()
                status = container.wait(timeout=self.timeout)
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                self._kill(container)
                raise TransientLabelError(
                    f"Claude CLI did not finish within {self.timeout}s; the container was killed.", code="timeout"
                ) from None
            except docker.errors.APIError as exc:
                raise self._api_error(exc, redact) from None
            stdout = container.logs(stdout=True, stderr=False)[-MAX_OUTPUT_BYTES:]
            stderr = container.logs(stdout=False, stderr=True)[-MAX_OUTPUT_BYTES:]
            exit_code = int(status.get("StatusCode", -1))
            if exit_code == 137:
                container.reload()
                if container.attrs.get("State", {}).get("OOMKilled"):
                    raise LabelError(
                        f"Claude CLI ran out of memory (limit {self.memory_mb} MB; raise IMAGINEER_LABEL_MEMORY_MB).",
                        code="out_of_memory",
                    )
            return ProcessOutput(
                exit_code=exit_code,
                stdout=stdout.decode("utf-8", errors="replace"),
                stderr=stderr.decode("utf-8", errors="replace"),
            )
        except _ENGINE_ERRORS as exc:
            raise TransientLabelError(
                f"The Docker engine stopped answering: {redact(str(exc))[:300]}", code="engine_unavailable"
            ) from None
        finally:
            self._remove(container)

    def _create(self, client: docker.DockerClient, image_path: Path, args: list[str]):
        inside = f"{CONTAINER_IMAGE_DIR}/{container_image_name(image_path)}"
        try:
            return client.containers.create(
                self.image,
                command=args,
                init=True,
                user=CONTAINER_USER,
                environment={"HOME": CONTAINER_HOME},
                working_dir=CONTAINER_HOME,
                network_mode=self.network,
                mounts=[
                    Mount(inside, str(image_path), type="bind", read_only=True),
                    Mount(CONTAINER_CREDENTIALS, str(self.credentials_path.resolve()), type="bind", read_only=True),
                ],
                tmpfs={
                    CONTAINER_HOME: "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0700",
                    "/tmp": "rw,nosuid,nodev,size=64m,mode=1777",  # noqa: S108 - a path inside the container
                },
                read_only=True,
                mem_limit=f"{self.memory_mb}m",
                memswap_limit=f"{self.memory_mb}m",
                pids_limit=self.pids_limit,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                labels={CONTAINER_LABEL: NAME},
                stdin_open=False,
                tty=False,
            )
        except docker.errors.ImageNotFound:
            raise LabelError(
                f"Docker image {self.image} is not on the engine; build it: "
                f"docker build -t {self.image} docker/claude-cli/",
                code="image_missing",
            ) from None
        except docker.errors.APIError as exc:
            raise self._api_error(exc, Redactor(self.credentials_path)) from None
        except _ENGINE_ERRORS as exc:
            raise TransientLabelError(
                f"The Docker engine is not answering ({_engine_address()}): {str(exc)[:300]}",
                code="engine_unavailable",
            ) from None

    @staticmethod
    def _api_error(exc: docker.errors.APIError, redact: Redactor) -> LabelError:
        message = (
            f"The Docker engine refused to run the labeling container: {redact(str(exc.explanation or exc))[:500]}"
        )
        if exc.is_server_error():
            return TransientLabelError(message, code="engine_error")
        return LabelError(message, code="engine_error")

    @staticmethod
    def _kill(container) -> None:
        try:
            container.kill()
        except (docker.errors.APIError, *_ENGINE_ERRORS):
            logger.warning("could not kill labeling container %s", container.short_id, exc_info=True)

    @staticmethod
    def _remove(container) -> None:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except (docker.errors.APIError, *_ENGINE_ERRORS):
            logger.warning("could not remove labeling container %s", container.short_id, exc_info=True)

    def health(self) -> LabelerHealth:
        report: LabelerHealth = {
            "backend": NAME,
            "engine_answers": False,
            "image_exists": False,
            "ok": False,
            "image": self.image,
            "credentials_found": self.credentials_path.is_file(),
        }
        try:
            client = docker_client()
            client.ping()
            report["engine_answers"] = True
            report["engine_version"] = client.version().get("Version", "")
            client.images.get(self.image)
            report["image_exists"] = True
        except docker.errors.ImageNotFound:
            report["detail"] = f"Build the image: docker build -t {self.image} docker/claude-cli/"
        except (LabelError, *_ENGINE_ERRORS) as exc:
            report["detail"] = f"The Docker engine is not answering ({_engine_address()}): {str(exc)[:300]}"
        report["ok"] = bool(report["engine_answers"] and report["image_exists"] and report["credentials_found"])
        if report["ok"] is False and "detail" not in report:
            report["detail"] = f"Claude credentials not found at {self.credentials_path}: run `claude setup-token`."
        return report
