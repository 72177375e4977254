"""One lifecycle for every kind of background work: enqueue, claim, heartbeat, cancel, finish.

Rows are subclasses of :class:`imagineer.models.Job`; the transitions are documented there.
Everything here is a conditional UPDATE whose row count is checked, so a task delivered twice,
a worker that died, or a cancel racing a finish never moves a row backwards and never lets two
workers hold one row:

* :func:`enqueue_on_commit` writes the task id on the rows and sends the message after commit.
* :func:`claim` lets a worker take rows that are queued, whose heartbeat is stale
  (:func:`stale_q`, ``IMAGINEER_JOB_STALE_SECONDS``), or that carry the same task id (a
  redelivery); it counts attempts and fails a row past its limit with the reason.
* :class:`Heartbeat` keeps ``heartbeat_at`` fresh from a thread; :class:`Throttle` keeps
  progress writes to a few per second.
* :func:`cancel` is the one cancel path: queued rows are cancelled now and their messages
  revoked; running rows move to ``cancelling`` and the worker stops at its next check;
  in-progress rows whose heartbeat is stale (their worker is gone) are cancelled now.
* :func:`job_finish`, :func:`job_fail`, :func:`release` end or hand back a claim.
* :func:`job_task` wraps a Celery task so that a dropped database connection is retried with
  backoff and never recorded as the work's failure.
* :func:`kind_register` / :func:`kinds`: the registry a reconciler iterates, with each kind's
  "send the message again" hook.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from imagineer.models import Job

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def worker_name() -> str:
    """host:pid of this process: who holds a claimed row."""
    return f"{socket.gethostname()}:{os.getpid()}"


def stale_seconds() -> int:
    return settings.IMAGINEER_JOB_STALE_SECONDS


def stale_q(model: type[Job], *, now: datetime | None = None) -> Q:
    """Rows held by a worker that stopped beating: in progress, heartbeat (or start) too old."""
    cutoff = (now or timezone.now()) - timedelta(seconds=stale_seconds())
    return Q(status__in=model.IN_PROGRESS) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )


def _limit_expr():
    return Coalesce(F("max_attempts"), Value(settings.IMAGINEER_JOB_MAX_ATTEMPTS))


# --- enqueue ----------------------------------------------------------------------------------


def enqueue_on_commit(task: Any, rows: QuerySet[Any], *, args: Sequence[Any] = (), **options: Any) -> str:
    """Give ``rows`` a fresh task id and send ``task`` after the transaction commits.

    The id is written first, so the claim can tell this message (or its redelivery) from
    any other. Returns the task id.
    """
    task_id = str(uuid.uuid4())
    rows.update(task_id=task_id)
    transaction.on_commit(functools.partial(task.apply_async, args=list(args), task_id=task_id, **options))
    return task_id


# --- claim ------------------------------------------------------------------------------------


def claimable_q(model: type[Job], *, task_id: str, now: datetime | None = None, worker: str | None = None) -> Q:
    """Rows a worker running ``task_id`` may take: queued, redelivered, or stale.

    For a kind with ``REDELIVERY_TAKES_OVER`` off, a redelivered message (another ``worker``)
    waits for the heartbeat to go stale like any other: only the same process retrying the
    same task takes its row back at once.
    """
    redelivered = Q(status__in=model.IN_PROGRESS, task_id=task_id)
    if worker is not None and not model.REDELIVERY_TAKES_OVER:
        redelivered &= Q(worker=worker)
    return Q(cancel_requested=False) & (Q(status=model.STATUS_QUEUED) | redelivered | stale_q(model, now=now))


def claim(rows: QuerySet[J], *, task_id: str, worker: str | None = None) -> list[int]:
    """Atomically take ``rows`` for this worker; returns the ids it now holds.

    Before taking anything: queued rows whose cancel was requested become cancelled, stale
    ``cancelling`` rows too, and rows that would be taken but have used up their attempts
    fail with the reason. The claim itself is one UPDATE; a row another live worker holds
    (fresh heartbeat, other task id) is left alone. The same worker retrying the same task
    (a transient error) does not use up an attempt.
    """
    model: type[J] = rows.model
    worker = worker or worker_name()
    now = timezone.now()
    rows.filter(status=model.STATUS_QUEUED, cancel_requested=True).update(
        status=model.STATUS_CANCELLED, finished_at=now
    )
    rows.filter(stale_q(model, now=now), cancel_requested=True).update(status=model.STATUS_CANCELLED, finished_at=now)
    exhausted = rows.filter(claimable_q(model, task_id=task_id, now=now, worker=worker)).exclude(
        task_id=task_id, worker=worker, status__in=model.IN_PROGRESS
    )
    for pk, attempts, last_worker in exhausted.filter(attempts__gte=_limit_expr()).values_list(
        "pk", "attempts", "worker"
    ):
        reason = (
            f"Gave up after {attempts} attempts: each time the worker stopped before finishing"
            f"{f' (last on {last_worker})' if last_worker else ''}. Retry it once the cause is fixed."
        )
        model._default_manager.filter(claimable_q(model, task_id=task_id, now=now, worker=worker), pk=pk).update(
            status=model.STATUS_FAILED, error=reason, finished_at=now, worker=""
        )
    same_holder = Q(task_id=task_id, worker=worker, status__in=model.IN_PROGRESS)
    taken = rows.filter(claimable_q(model, task_id=task_id, now=now, worker=worker)).filter(
        same_holder | Q(attempts__lt=_limit_expr())
    )
    pks = list(taken.values_list("pk", flat=True))
    if not pks:
        return []
    model._default_manager.filter(claimable_q(model, task_id=task_id, now=now, worker=worker), pk__in=pks).filter(
        same_holder | Q(attempts__lt=_limit_expr())
    ).update(
        status=model.STATUS_RUNNING,
        task_id=task_id,
        worker=worker,
        heartbeat_at=now,
        started_at=Coalesce(F("started_at"), Value(now)),
        attempts=Case(When(same_holder, then=F("attempts")), default=F("attempts") + 1),
    )
    return list(
        model._default_manager.filter(pk__in=pks, status=model.STATUS_RUNNING, task_id=task_id, worker=worker)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def claim_one(model: type[J], pk: int, *, task_id: str, worker: str | None = None) -> bool:
    return bool(claim(model._default_manager.filter(pk=pk), task_id=task_id, worker=worker))


# --- while running ------------------------------------------------------------------------------


def held(model: type[J], pks: Iterable[int], *, worker: str | None = None) -> QuerySet[J]:
    """The rows of ``pks`` still held by this worker (in progress, its name on them)."""
    return model._default_manager.filter(pk__in=list(pks), status__in=model.IN_PROGRESS, worker=worker or worker_name())


def beat(model: type[Job], pks: Iterable[int], *, worker: str | None = None, **fields: Any) -> int:
    """Write the heartbeat (and any progress ``fields``); returns how many rows this worker still holds."""
    return held(model, pks, worker=worker).update(heartbeat_at=timezone.now(), **fields)


def cancel_requested(model: type[Job], pks: Iterable[int]) -> set[int]:
    return set(model._default_manager.filter(pk__in=list(pks), cancel_requested=True).values_list("pk", flat=True))


class Throttle:
    """True at most once per ``interval`` seconds: progress writes stay at a few per second."""

    def __init__(self, interval: float = 0.25, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def reset(self) -> None:
        self._last = None


class Heartbeat:
    """Keep ``heartbeat_at`` of held rows fresh from a thread while long work runs.

    Use as a context manager around work that may block for longer than the stale limit
    without writing progress. The thread uses its own connection and closes it.
    """

    def __init__(
        self, model: type[Job], pks: Iterable[int], *, worker: str | None = None, interval: float | None = None
    ) -> None:
        self.model = model
        self.pks = list(pks)
        self.worker = worker or worker_name()
        self.interval = interval if interval is not None else max(1.0, stale_seconds() / 4)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    beat(self.model, self.pks, worker=self.worker)
                except TRANSIENT_DB_ERRORS:
                    logger.warning("Heartbeat write failed; trying again in %.0fs", self.interval)
                    connection.close()
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.model.__name__}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)


# --- ending a claim -----------------------------------------------------------------------------


def job_finish(model: type[Job], pks: Iterable[int], *, worker: str | None = None, **fields: Any) -> int:
    """In progress -> the kind's success status; returns how many rows it finished."""
    return held(model, pks, worker=worker).update(
        status=model.STATUS_SUCCEEDED, finished_at=timezone.now(), heartbeat_at=None, **fields
    )


def job_fail(model: type[Job], pks: Iterable[int], *, error: str, worker: str | None = None, **fields: Any) -> int:
    """In progress -> failed with a message a user can act on."""
    return held(model, pks, worker=worker).update(
        status=model.STATUS_FAILED, error=error[:4000], finished_at=timezone.now(), heartbeat_at=None, **fields
    )


def job_cancelled(model: type[Job], pks: Iterable[int], *, worker: str | None = None, **fields: Any) -> int:
    """In progress -> cancelled: the worker stopped because of the flag."""
    return held(model, pks, worker=worker).update(
        status=model.STATUS_CANCELLED, finished_at=timezone.now(), heartbeat_at=None, **fields
    )


def release(model: type[Job], pks: Iterable[int], *, worker: str | None = None) -> int:
    """Hand rows back to the queue (the worker is stopping); the attempt is given back."""
    return held(model, pks, worker=worker).update(
        status=model.STATUS_QUEUED, worker="", heartbeat_at=None, attempts=Greatest(F("attempts") - 1, Value(0))
    )


# --- cancel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelResult:
    cancelled: list[int]  # were queued: cancelled now
    cancelling: list[int]  # were running: the worker stops at its next check
    revoked: list[str]  # task ids whose messages no longer have anything to do


def cancel(rows: QuerySet[J]) -> CancelResult:
    """The one cancel path: flag + status, and revoke messages left with nothing to run.

    A message shared by several rows (a generation chunk) is revoked only when none of its
    rows is left queued or running. Revoking is best effort (sent after commit): the claim
    refuses cancelled rows anyway.
    """
    model: type[J] = rows.model
    now = timezone.now()
    queued = list(rows.filter(status=model.STATUS_QUEUED).values_list("pk", "task_id"))
    running = list(rows.filter(status=model.STATUS_RUNNING).values_list("pk", flat=True))
    cancelling = list(rows.filter(status=model.STATUS_CANCELLING).values_list("pk", flat=True))
    model._default_manager.filter(pk__in=[pk for pk, _ in queued], status=model.STATUS_QUEUED).update(
        status=model.STATUS_CANCELLED, cancel_requested=True, finished_at=now
    )
    model._default_manager.filter(pk__in=running, status=model.STATUS_RUNNING).update(
        status=model.STATUS_CANCELLING, cancel_requested=True
    )
    # A stale holder is gone: nobody would see the flag, so those rows are cancelled now.
    stale = model._default_manager.filter(
        stale_q(model, now=now), pk__in=running + cancelling, status=model.STATUS_CANCELLING
    )
    dead = list(stale.values_list("pk", flat=True))
    stale.filter(pk__in=dead).update(status=model.STATUS_CANCELLED, finished_at=now, heartbeat_at=None, worker="")
    task_ids = {task_id for _, task_id in queued if task_id}
    busy = set(
        model._default_manager.filter(
            task_id__in=task_ids, status__in=model.IN_PROGRESS | {model.STATUS_QUEUED}
        ).values_list("task_id", flat=True)
    )
    revoked = sorted(task_ids - busy)
    if revoked:
        transaction.on_commit(functools.partial(revoke, revoked))
    return CancelResult(
        cancelled=[pk for pk, _ in queued] + dead,
        cancelling=[pk for pk in running if pk not in dead],
        revoked=revoked,
    )


def revoke(task_ids: Sequence[str]) -> None:
    """Tell the workers to drop these messages when they arrive (not to kill running ones)."""
    from imagineer.celery import app

    try:
        app.control.revoke(list(task_ids))
    except Exception:  # the broker is down: the cancelled status alone keeps the work from running
        logger.warning("Could not revoke %s; the claim will refuse the cancelled rows", task_ids, exc_info=True)


# --- the task wrapper ---------------------------------------------------------------------------


def retry_countdown(retries: int) -> float:
    """Seconds before retry number ``retries`` + 1: 1, 2, 4 ... capped at a minute."""
    return float(min(60, 2**retries))


def job_task(*, name: str, max_retries: int = 8, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """A Celery task for job work: acks late, rejected on worker loss, DB drops retried.

    ``OperationalError`` / ``InterfaceError`` mean the database connection went away (a
    restart, a network blip): the wrapper closes the connection and retries the task with
    backoff under the same task id, so the claim treats it as the same holder. It writes
    nothing on the dead connection and records nothing as the work's failure.
    """
    from celery import shared_task

    def decorate(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except TRANSIENT_DB_ERRORS as exc:
                logger.warning("%s: database connection lost (%s); retrying", name, exc)
                connection.close()
                close_old_connections()
                raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries)) from None

        return shared_task(
            bind=True, name=name, acks_late=True, reject_on_worker_lost=True, max_retries=max_retries, **options
        )(run)

    return decorate


# --- the registry of kinds ----------------------------------------------------------------------


@dataclass(frozen=True)
class JobKind:
    model: type[Job]
    # Send the message for a row again (its message was lost): a reconciler calls it for
    # queued rows whose message is gone and for stale rows it requeues.
    resend: Callable[[Sequence[int]], None]


_KINDS: dict[str, JobKind] = {}


def kind_register(model: type[Job], *, resend: Callable[[Sequence[int]], None]) -> None:
    """Called from an app's ``AppConfig.ready()``; one entry per model."""
    _KINDS[model._meta.label] = JobKind(model=model, resend=resend)


def kinds() -> list[JobKind]:
    return list(_KINDS.values())
