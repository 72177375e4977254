"""Fault injection for background work: break PostgreSQL, Redis and workers on purpose.

Used by the fault suite (``imagineer/tests/test_faults.py``, marker ``faults``) and by
``bench/faults.py``, which also runs it against an older checkout of the code: so this module
uses only what every version has (``run_start``/``run_cancel``/``run_retry``, job status and
result image, the Celery command line) and nothing of the reconciler it measures.

A :class:`Lab` owns a private ``redis-server`` (no persistence) as the broker, a gpu worker
and, when the code has a reconciler, a default-queue worker with an embedded beat. Each
scenario starts a small batch run of the tiny model, injects one fault, clears it, and waits
for the system to settle; :class:`Outcome` says what was lost, duplicated or stuck and how
long recovery took after the fault cleared.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count

ROWS = 6
SMALL = {"width": 64, "height": 64, "steps": 6, "seed": 7}
# Fast timeouts for the lab only; production keeps its safe defaults (settings.py).
FAST_ENV = {
    "IMAGINEER_TORCH_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "IMAGINEER_CHUNK_SIZE": "2",
    "IMAGINEER_BATCH_SIZE": "2",
    "IMAGINEER_JOB_STALE_SECONDS": "5",
    "IMAGINEER_RECONCILE_SECONDS": "1",
    "IMAGINEER_RECONCILE_LOST_SECONDS": "2",
    "IMAGINEER_TMP_STALE_SECONDS": "2",
    "IMAGINEER_MEDIA_SWEEP_SECONDS": "1",
}
FAULTS = ("db_drop", "broker_restart", "broker_down_at_start", "worker_kill", "cancel_retry")


# libpq reads PGAPPNAME: the lab's workers' connections carry this name.
WORKER_APPLICATION_NAME = "imagineer-faultlab-worker"


def has_reconciler() -> bool:
    return importlib.util.find_spec("imagineer.reconcile") is not None


# --- processes -------------------------------------------------------------------------------


@dataclass
class Broker:
    """A redis-server without persistence on a spare port; stop() loses every message."""

    port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def free_port(ports: str = os.environ.get("IMAGINEER_TEST_REDIS_PORTS", "6390-6399")) -> int:
    low, _, high = ports.partition("-")
    for port in range(int(low), int(high or low) + 1):
        with socket.socket() as probe:
            # Connections of a server stopped a moment ago linger in TIME_WAIT: not "in use".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {ports} (IMAGINEER_TEST_REDIS_PORTS)")


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.1, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"Timed out after {timeout}s waiting for {message}")


# --- what a trial measures ---------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    runs: int = 0
    lost: int = 0  # rows with no image and no failure reason
    duplicated: int = 0  # extra images, extra album entries, extra runs from a retried request
    stuck: int = 0  # runs and jobs not finished when the wait ran out
    orphans: int = 0  # temporary files, images no row points at, sidecars without an image
    recovery: float | None = None  # seconds from the fault clearing to every run finished
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.orphans) and self.recovery is not None


# --- the lab -----------------------------------------------------------------------------


class Lab:
    def __init__(self, *, log_dir: Path, settle_timeout: float = 30, extra_env: dict[str, str] | None = None):
        self.log_dir = log_dir
        self.settle_timeout = settle_timeout
        self.env = {**FAST_ENV, **(extra_env or {})}
        self.reconciler = has_reconciler()
        self.broker = Broker(port=free_port(), log_path=log_dir / "broker.log")
        self.workers: list[Worker] = []
        self._saved: dict[str, Any] = {}

    # -- setup --

    def __enter__(self) -> Lab:
        self.broker.start()
        self._broker_use(self.broker.url)
        settings.IMAGINEER_CHUNK_SIZE = int(self.env["IMAGINEER_CHUNK_SIZE"])
        self.gpu = self.worker_start("gpu")
        if self.reconciler:
            self.housekeeper = self.worker_start("default", beat=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop()
        self.broker.stop()
        self._broker_restore()

    def _broker_use(self, url: str) -> None:
        from imagineer.celery import app

        self._saved = {"setting": settings.CELERY_BROKER_URL, "app": app.conf.broker_url}
        settings.CELERY_BROKER_URL = app.conf.broker_url = url
        self._pools_reset()

    def _broker_restore(self) -> None:
        from imagineer.celery import app

        if self._saved:
            settings.CELERY_BROKER_URL, app.conf.broker_url = self._saved["setting"], self._saved["app"]
            self._pools_reset()

    @staticmethod
    def _pools_reset() -> None:
        """Producers made for the previous broker URL must not be reused."""
        from imagineer.celery import app

        # kombu keeps one pool per broker URL; dropping the app's references is enough.
        app._pool = None
        app.amqp._producer_pool = None

    def worker_env(self) -> dict[str, str]:
        db = connection.settings_dict
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "imagineer.settings",
                "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
                "REDIS_URL": self.broker.url,
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "LORA_ROOT": str(settings.LORA_ROOT),
                "IMAGINEER_TINY_MODEL_DIR": str(settings.IMAGINEER_TINY_MODEL_DIR),
                "PYTHONUNBUFFERED": "1",
                # libpq names the workers' connections, so the database fault hits only them.
                "PGAPPNAME": WORKER_APPLICATION_NAME,
            }
        )
        env.pop("IMAGINEER_MODEL", None)
        env.update(self.env)
        return env

    def worker_start(self, queues: str, *, beat: bool = False, wait: bool = True) -> Worker:
        name = f"{queues}-{uuid.uuid4().hex[:8]}"
        log_path = self.log_dir / f"worker-{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "imagineer", "worker", "-Q", queues, "-c", "1"]
        command += ["-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        if beat:
            command += ["-B", "--schedule", str(self.log_dir / f"beat-{name}")]
        process = subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=self.worker_env(),
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(name=name, process=process, log_path=log_path)
        self.workers.append(worker)
        if wait:
            wait_for(lambda: " ready." in worker.log() or process.poll() is not None, timeout=120, message=name)
            if process.poll() is not None:
                raise RuntimeError(f"Worker {name} exited:\n{worker.log()[-3000:]}")
        return worker

    # -- the work --

    @staticmethod
    def template():
        from generation.models import BatchTemplate

        slug = f"faults-{uuid.uuid4().hex[:8]}"
        return BatchTemplate.objects.create(
            name=slug,
            slug=slug,
            columns=["thing"],
            csv_data=[{"thing": f"thing {index}"} for index in range(ROWS)],
            prompt_template="a {thing}",
            width=64,
            height=64,
            steps=SMALL["steps"],
        )

    def run_start(self, template=None):
        from generation.services.runs import run_start

        return run_start(template=template or self.template(), theme="faults", overrides=dict(SMALL))

    @staticmethod
    def jobs_of(runs) -> Any:
        from generation.models import GenerationJob

        return GenerationJob.objects.filter(run__in=[run.pk for run in runs])

    def wait_running(self, runs, *, succeeded: int = 0, timeout: float = 90) -> None:
        def ready():
            jobs = self.jobs_of(runs)
            return jobs.filter(status="running").exists() and jobs.filter(status="succeeded").count() >= succeeded

        wait_for(ready, timeout=timeout, interval=0.05, message="a job of the run to be running")

    # -- measuring --

    def _settled(self, runs) -> bool:
        from generation.models import BatchGenerationRun

        finished = {"completed", "completed_with_errors", "failed", "cancelled"}
        statuses = set(BatchGenerationRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("status", flat=True))
        if not statuses <= finished:
            return False
        return not self.jobs_of(runs).exclude(status__in=["succeeded", "failed", "cancelled"]).exists()

    def measure(self, fault: str, runs, *, cleared_at: float, extra_runs: int = 0, user_cancelled: bool = False):
        from albums.models import AlbumImage, Image
        from generation.models import BatchGenerationRun

        outcome = Outcome(fault=fault, runs=len(runs), duplicated=extra_runs)
        try:
            wait_for(lambda: self._settled(runs), timeout=self.settle_timeout, interval=0.2, message="runs to settle")
            outcome.recovery = round(time.monotonic() - cleared_at, 1)
        except TimeoutError:
            pass
        known_files = lambda: set(Image.objects.values_list("file", flat=True))  # noqa: E731
        if self.reconciler:  # files age past IMAGINEER_TMP_STALE_SECONDS, then a sweep removes them
            root = Path(settings.MEDIA_ROOT)
            try:
                wait_for(
                    lambda: not orphan_files(root, known_files()),
                    timeout=float(self.env["IMAGINEER_TMP_STALE_SECONDS"]) + 4,
                    interval=0.25,
                )
            except TimeoutError:
                pass
        jobs = self.jobs_of(runs)
        outcome.stuck = jobs.exclude(status__in=["succeeded", "failed", "cancelled"]).count()
        outcome.stuck += (
            BatchGenerationRun.objects.filter(pk__in=[r.pk for r in runs])
            .exclude(status__in=["completed", "completed_with_errors", "failed", "cancelled"])
            .count()
        )
        no_image = jobs.exclude(status="succeeded")
        if not user_cancelled:
            outcome.lost = no_image.exclude(status="failed", error__gt="").count()
        else:
            outcome.lost = no_image.exclude(status__in=["failed", "cancelled"]).count()
        albums = [
            run.album_id for run in BatchGenerationRun.objects.filter(pk__in=[r.pk for r in runs]) if run.album_id
        ]
        entries = AlbumImage.objects.filter(album_id__in=albums)
        succeeded = jobs.filter(status="succeeded").count()
        outcome.duplicated += max(0, entries.count() - succeeded)
        outcome.duplicated += entries.values("album_id", "position").annotate(n=Count("id")).filter(n__gt=1).count()
        outcome.orphans = len(orphan_files(Path(settings.MEDIA_ROOT), known_files()))
        for run in BatchGenerationRun.objects.filter(pk__in=[r.pk for r in runs]):
            outcome.notes.append(f"run {run.pk}: {run.status} {run.completed_items}/{run.total_items}")
        return outcome

    # -- the faults --

    def db_drop(self) -> Outcome:
        """pg_terminate_backend on every other connection (the workers') while a chunk runs."""
        runs = [self.run_start()]
        self.wait_running(runs)
        time.sleep(0.2)
        dropped = database_connections_drop()
        cleared = time.monotonic()
        outcome = self.measure("db_drop", runs, cleared_at=cleared)
        outcome.notes.append(f"{dropped} connections dropped")
        return outcome

    def broker_restart(self) -> Outcome:
        """The broker dies without persistence while most chunks still wait in it."""
        runs = [self.run_start()]
        self.wait_running(runs, succeeded=1)
        self.broker.stop()
        self.broker.start()
        cleared = time.monotonic()
        return self.measure("broker_restart", runs, cleared_at=cleared)

    def broker_down_at_start(self) -> Outcome:
        """A run is requested through the API while the broker is down; a client retries a 5xx."""
        from django.contrib.auth.models import User
        from django.test import Client

        from generation.models import BatchGenerationRun

        template = self.template()
        user = User.objects.create_superuser(f"faults-{uuid.uuid4().hex[:8]}", password=None)
        client = Client(raise_request_exception=False)
        client.force_login(user)
        before = set(BatchGenerationRun.objects.values_list("pk", flat=True))
        self.broker.stop()
        statuses = []
        for _ in range(2):  # a client retries once when it gets a server error
            response = client.post(
                f"/api/batch-templates/{template.pk}/generate",
                {"theme": "faults", "overrides": SMALL},
                content_type="application/json",
            )
            statuses.append(response.status_code)
            if response.status_code < 500:
                break
        self.broker.start()
        cleared = time.monotonic()
        runs = list(BatchGenerationRun.objects.exclude(pk__in=before))
        outcome = self.measure("broker_down_at_start", runs, cleared_at=cleared, extra_runs=max(0, len(runs) - 1))
        outcome.notes.append(f"API answered {statuses}")
        return outcome

    def worker_kill(self) -> Outcome:
        """SIGKILL the gpu worker mid-chunk; a new one starts. The fault has cleared when the
        new worker has its model loaded (booting a worker is not what is measured)."""
        from django.utils import timezone

        from generation.models import EngineWorker

        runs = [self.run_start()]
        self.wait_running(runs)
        self.gpu.kill()
        self.workers.remove(self.gpu)
        started = timezone.now()
        self.gpu = self.worker_start("gpu")
        wait_for(
            lambda: EngineWorker.objects.filter(loaded=True, last_seen__gte=started).exists(),
            timeout=120,
            interval=0.2,
            message="the new gpu worker to load its model",
        )
        cleared = time.monotonic()
        return self.measure("worker_kill", runs, cleared_at=cleared)

    def cancel_retry(self) -> Outcome:
        """Cancel mid-run and retry at once, twice: every row must end with its image."""
        from generation.models import BatchGenerationRun
        from generation.services.runs import run_cancel, run_retry
        from imagineer.errors import ApplicationError

        runs = [self.run_start()]
        refused = []
        for _ in range(2):
            self.wait_running(runs)
            run_cancel(run=BatchGenerationRun.objects.get(pk=runs[0].pk))
            try:
                run_retry(run=BatchGenerationRun.objects.get(pk=runs[0].pk))
            except ApplicationError as exc:
                refused.append(str(exc))
        cleared = time.monotonic()
        outcome = self.measure("cancel_retry", runs, cleared_at=cleared)
        outcome.notes += [f"retry refused: {message}" for message in refused]
        return outcome

    def scenario(self, fault: str) -> Outcome:
        return getattr(self, fault)()


def database_connections_drop() -> int:
    """Terminate the lab's workers' connections to this database (named by PGAPPNAME).

    Only theirs: the test process and other threads (a live server's) keep their connections."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = %s",
            [WORKER_APPLICATION_NAME],
        )
        return int(cursor.fetchone()[0])


def orphan_files(root: Path, known_files: set[str]) -> list[Path]:
    """Files a crash left behind: temporaries, generated images no row points at, lone sidecars."""
    found = [p for pattern in (".*.tmp", "*.part") for p in root.rglob(pattern) if p.is_file()]
    outputs = root / "outputs"
    if outputs.is_dir():
        for png in outputs.rglob("*.png"):
            if png.relative_to(root).as_posix() not in known_files:
                found.append(png)
        for sidecar in outputs.rglob("*.json"):
            if not sidecar.with_suffix(".png").exists():
                found.append(sidecar)
    return found
