"""Test helpers shared by every app: a real Celery worker process against the test database.

Tests that use a worker need committed data (``@pytest.mark.django_db(transaction=True)``)
and the ``celery_worker`` fixture from the root conftest:

    def test_something(celery_worker):
        worker = celery_worker("gpu")          # starts `celery worker -Q gpu`, waits until ready
        ...
        worker.kill()                          # SIGKILL, e.g. to test redelivery
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker subprocess needs to share the test's database, broker and files."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "imagineer.settings",
            "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LORA_ROOT": str(settings.LORA_ROOT),
            "IMAGINEER_TINY_MODEL_DIR": str(settings.IMAGINEER_TINY_MODEL_DIR),
            "PYTHONUNBUFFERED": "1",
        }
    )
    # Workers share two cores with the test process: OpenMP spinning across threads makes
    # torch 10x slower under that contention than a single thread.
    env.setdefault("OMP_NUM_THREADS", "1")
    if settings.IMAGINEER_MODEL:
        env["IMAGINEER_MODEL"] = settings.IMAGINEER_MODEL
    env.update(extra or {})
    return env


@dataclass
class WorkerProcess:
    queues: str
    log_path: Path
    process: subprocess.Popen
    _log_handle: IO[Any] | None = field(repr=False, default=None)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker for {self.queues} exited early:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"Celery worker for {self.queues} not ready after {timeout}s:\n{self.log()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._log_handle is not None:
            self._log_handle.close()


def worker_start(
    queues: str,
    *,
    log_dir: Path,
    concurrency: int = 1,
    name: str | None = None,
    extra_env: dict[str, str] | None = None,
    wait: bool = True,
) -> WorkerProcess:
    log_path = log_dir / f"worker-{(name or queues).replace(',', '-')}-{time.monotonic_ns()}.log"
    handle = log_path.open("wb")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "imagineer",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-n",
        f"{name or queues.replace(',', '-')}-{os.getpid()}-{time.monotonic_ns()}@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    process = subprocess.Popen(
        command,
        cwd=BASE_DIR,
        env=worker_env(extra_env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(queues=queues, log_path=log_path, process=process, _log_handle=handle)
    if wait:
        worker.wait_ready()
    return worker


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.2, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"Timed out after {timeout}s waiting for {message}")


SPARE_REDIS_PORTS = os.environ.get("IMAGINEER_TEST_REDIS_PORTS", "6390-6399")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Connections of a server stopped a moment ago linger in TIME_WAIT: not "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class RedisServer:
    """A throw-away ``redis-server`` without persistence: stop it and restart it to lose every
    queued message, as a broker restart without AOF/RDB does. Never the shared Redis."""

    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: self._pings(client), timeout=timeout, interval=0.05, message=f"redis-server on {self.port}")

    def _pings(self, client) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited:\n{self.log_path.read_text()[-2000:]}")
        try:
            return bool(client.ping())
        except Exception:
            return False

    def stop(self) -> None:
        """SIGKILL: everything it held is gone, as after a crash of a server without persistence."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def redis_server_start(*, log_dir: Path) -> RedisServer:
    """Start a private redis-server on the first free port of IMAGINEER_TEST_REDIS_PORTS."""
    low, _, high = SPARE_REDIS_PORTS.partition("-")
    for port in range(int(low), int(high or low) + 1):
        if _port_free(port):
            server = RedisServer(port=port, log_path=log_dir / f"redis-{port}.log")
            server.start()
            return server
    raise RuntimeError(f"No free port for a test redis-server in {SPARE_REDIS_PORTS} (IMAGINEER_TEST_REDIS_PORTS).")


@contextmanager
def full_filesystem(path: Path, *, size_kb: int = 64) -> Iterator[Path]:
    """Mount a tiny tmpfs at ``path`` and fill it: writes there fail with ENOSPC from the
    kernel, as on a full disk. Needs the right to mount (root, as the test machine runs)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        raise RuntimeError(f"Could not mount a tmpfs at {path} to simulate a full disk: {mounted.stderr.strip()}")
    try:
        filler = path / ".filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)
        yield filler
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)
