"""The reconciler: the rules that repair background work, written once for every kind of job.

``celery -A imagineer beat`` sends :func:`imagineer.tasks.reconcile` to the default queue every
``IMAGINEER_RECONCILE_SECONDS``. Each pass applies, to every kind in the job registry
(:func:`imagineer.jobs.kinds`):

1. **Stale work.** A row in progress whose heartbeat is older than
   ``IMAGINEER_JOB_STALE_SECONDS`` lost its worker (killed, or its database connection dropped
   and the task ended). Cancel requested: it becomes ``cancelled``. Attempts used up: ``failed``
   with the reason. Otherwise it goes back to ``queued`` and its kind sends a new message.
2. **Lost messages.** A queued row whose message is neither waiting in the broker nor held by a
   worker, on two passes at least ``IMAGINEER_RECONCILE_LOST_SECONDS`` apart, is sent again:
   the message was refused (broker down at commit: the rows are the outbox) or lost (a broker
   restart without persistence). A queued row whose cancel was requested is cancelled.

and to every parent registered with :func:`parent_register` (a batch run over its jobs, a
labeling job over its items; rule 1 leaves parents alone and rule 2 looks only at a parent's
own message, if it has one: their items carry the work):

3. **Finished parents.** A parent not yet finished whose items are all finished is settled by
   its kind's own rule (completed, completed with errors, failed, cancelled).

and, every ``IMAGINEER_MEDIA_SWEEP_SECONDS``:

4. **Files.** Stale temporary files, generated images no row points at and sidecars without
   their image are removed (:func:`albums.services.files.media_sweep`).

Two passes may run at once (two beat schedulers, a slow pass overlapping the next): every
rule locks the rows it changes with ``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checks its
condition under the lock, and a resent message is only ever extra: the claim lets exactly one
message take a row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from imagineer import jobs
from imagineer.models import Job

logger = logging.getLogger(__name__)

MISSING_KEY = "imagineer:reconcile:missing"
SWEEP_KEY = "imagineer:reconcile:media-sweep"
QUEUES = ("gpu", "labeling", "default")


@dataclass(frozen=True)
class Parent:
    model: type[Job]
    items: str  # the reverse accessor of the items (``jobs``, ``items``)
    settle: Callable[[int], Any]  # recompute counts and the final status of one parent


_PARENTS: dict[str, Parent] = {}


def parent_register(model: type[Job], *, items: str, settle: Callable[[int], Any]) -> None:
    """A kind of work made of items (from ``AppConfig.ready()``): finished when its items are."""
    _PARENTS[model._meta.label] = Parent(model=model, items=items, settle=settle)


def parents() -> list[Parent]:
    return list(_PARENTS.values())


@dataclass
class Report:
    requeued: int = 0
    failed: int = 0
    cancelled: int = 0
    resent: int = 0
    settled: int = 0
    files: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requeued": self.requeued,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "resent": self.resent,
            "settled": self.settled,
            "files": self.files,
        }


# --- rule 1: stale work ---------------------------------------------------------------------


def _gave_up(row: Job) -> str:
    where = f" (last on {row.worker})" if row.worker else ""
    return (
        f"Gave up after {row.attempts} attempts: each time the worker stopped answering before it finished{where}. "
        "Retry it once the cause is fixed."
    )


def stale_repair(kind: jobs.JobKind, report: Report) -> None:
    model = kind.model
    now = timezone.now()
    with transaction.atomic():
        rows = list(model._default_manager.select_for_update(skip_locked=True).filter(jobs.stale_q(model, now=now)))
        if not rows:
            return
        requeue: list[int] = []
        for row in rows:
            base = model._default_manager.filter(jobs.stale_q(model, now=now), pk=row.pk)
            if row.cancel_requested or row.status == model.STATUS_CANCELLING:
                report.cancelled += base.update(
                    status=model.STATUS_CANCELLED, finished_at=now, heartbeat_at=None, worker=""
                )
            elif row.attempts >= row.attempt_limit:
                report.failed += base.update(
                    status=model.STATUS_FAILED, error=_gave_up(row), finished_at=now, heartbeat_at=None, worker=""
                )
            elif base.update(status=model.STATUS_QUEUED, heartbeat_at=None, worker=""):
                requeue.append(row.pk)
        if requeue:
            logger.warning("Requeueing %s %s: their worker stopped answering", model.__name__, requeue)
            kind.resend(requeue)
            report.requeued += len(requeue)


# --- rule 2: lost messages ------------------------------------------------------------------


def broker_task_ids() -> set[str] | None:
    """Task ids of every message the broker holds (waiting, or delivered and not acknowledged);
    None when the broker cannot be asked (not Redis, or down)."""
    from imagineer.celery import app

    if not settings.CELERY_BROKER_URL.startswith(("redis", "rediss", "unix")):
        return None
    try:
        with app.connection_for_read() as conn:
            channel: Any = conn.default_channel
            client = channel.client
            payloads: list[bytes] = []
            for queue in QUEUES:
                for priority in channel.priority_steps:
                    # kombu keeps one list per queue and priority step.
                    payloads.extend(client.lrange(channel._q_for_pri(queue, priority), 0, -1))
            held = client.hvals(channel.unacked_key)
    except Exception:  # an unreachable broker: no message can be sent now anyway
        logger.warning("Could not read the broker's messages", exc_info=True)
        return None
    ids = set()
    for raw in payloads:
        ids.add(_task_id(raw))
    for raw in held:
        try:
            ids.add(_task_id(json.dumps(json.loads(raw)[0])))
        except (ValueError, TypeError, IndexError):
            continue
    ids.discard("")
    return ids


def _task_id(raw: bytes | str) -> str:
    try:
        message = json.loads(raw)
        return str(message.get("headers", {}).get("id") or message.get("properties", {}).get("correlation_id") or "")
    except (ValueError, AttributeError):
        return ""


def _missing_since(task_ids: Iterable[str], *, now: float) -> dict[str, float]:
    """Remember when each task id was first seen missing (the cache; a hint, not state)."""
    seen: dict[str, float] = cache.get(MISSING_KEY) or {}
    current = {task_id: seen.get(task_id, now) for task_id in task_ids}
    cache.set(MISSING_KEY, current, timeout=max(600, int(settings.IMAGINEER_RECONCILE_LOST_SECONDS * 10)))
    return current


def lost_repair(kind_list: list[jobs.JobKind], report: Report, *, parent_models: set[type[Job]]) -> None:
    queued_by_kind = {}
    for kind in kind_list:
        model = kind.model
        queued = model._default_manager.filter(status=model.STATUS_QUEUED)
        if model in parent_models:
            # A parent has a message of its own only while queued for a first step (a labeling
            # job's fan-out); one without a task id waits for its items' messages instead.
            queued = queued.exclude(task_id="")
        report.cancelled += queued.filter(cancel_requested=True).update(
            status=model.STATUS_CANCELLED, finished_at=timezone.now()
        )
        pairs = list(queued.filter(cancel_requested=False).values_list("pk", "task_id"))
        if pairs:
            queued_by_kind[kind] = pairs
    if not queued_by_kind:
        _missing_since([], now=time.time())
        return
    present = broker_task_ids()
    if present is None:
        # Without a look into the broker only rows that never got a task id are known lost.
        present = {task_id for pairs in queued_by_kind.values() for _, task_id in pairs if task_id}
    missing = {task_id for pairs in queued_by_kind.values() for _, task_id in pairs if task_id not in present}
    now = time.time()
    since = _missing_since(missing, now=now)
    due = {task_id for task_id, first in since.items() if now - first >= settings.IMAGINEER_RECONCILE_LOST_SECONDS}
    for kind, pairs in queued_by_kind.items():
        pks = [pk for pk, task_id in pairs if task_id in due]
        if pks:
            _resend(kind, pks, due, report)


def _resend(kind: jobs.JobKind, pks: list[int], due: set[str], report: Report) -> None:
    model = kind.model
    with transaction.atomic():
        locked = list(
            model._default_manager.select_for_update(skip_locked=True)
            .filter(pk__in=pks, status=model.STATUS_QUEUED, cancel_requested=False, task_id__in=due)
            .values_list("pk", flat=True)
        )
        if locked:
            logger.warning("Sending %s %s again: their message is not in the broker", model.__name__, locked)
            kind.resend(locked)
            report.resent += len(locked)


# --- rule 3: finished parents ---------------------------------------------------------------


def parents_settle(report: Report) -> None:
    for parent in parents():
        model = parent.model
        relation: Any = model._meta.get_field(parent.items)
        items: Any = relation.related_model
        link = relation.field.name
        unfinished = items._default_manager.filter(**{link: OuterRef("pk")}).exclude(status__in=items.TERMINAL)
        anything = items._default_manager.filter(**{link: OuterRef("pk")})
        done = (
            model._default_manager.exclude(status__in=model.TERMINAL)
            .filter(Exists(anything))
            .filter(~Exists(unfinished))
            .values_list("pk", flat=True)
        )
        for pk in list(done):
            parent.settle(pk)
            report.settled += 1


# --- the pass -------------------------------------------------------------------------------


def reconcile(*, sweep_files: bool | None = None) -> Report:
    """One pass of every rule; safe to run at any time, in several processes at once."""
    report = Report()
    # A parent (a run over its jobs) has no message or worker of its own: its items carry them.
    parent_models = {parent.model for parent in parents()}
    for kind in jobs.kinds():
        if kind.model not in parent_models:
            stale_repair(kind, report)
    lost_repair(jobs.kinds(), report, parent_models=parent_models)
    parents_settle(report)
    if sweep_files is None:
        sweep_files = bool(cache.add(SWEEP_KEY, 1, timeout=max(1, int(settings.IMAGINEER_MEDIA_SWEEP_SECONDS))))
    if sweep_files:
        from albums.services.files import media_sweep

        report.files = media_sweep(older_than=settings.IMAGINEER_TMP_STALE_SECONDS)
    if any((report.requeued, report.failed, report.cancelled, report.resent, any(report.files.values()))):
        logger.info("Reconciled: %s", report.as_dict())
    return report


def idle_problems() -> list[str]:
    """What an idle system should not have: rows not finished (for tests and the bench)."""
    problems = []
    for kind in jobs.kinds():
        model = kind.model
        left = model._default_manager.exclude(status__in=model.TERMINAL).count()
        if left:
            problems.append(f"{left} {model.__name__} not finished")
    for parent in parents():
        left = parent.model._default_manager.exclude(status__in=parent.model.TERMINAL).count()
        if left:
            problems.append(f"{left} {parent.model.__name__} not finished")
    return problems
