"""Sending a committed job's message when the broker may be down.

The rows are the outbox: a job is committed as ``queued`` with its task id before anything is
sent, so a message the broker refused (or lost in a restart) is found by the reconciler, which
sends it again when the broker is back (imagineer/reconcile.py). :func:`send` therefore never
raises for an unreachable broker: it logs, and notes the deferral for the request in progress,
so that :class:`DeferredSendMiddleware` answers 202 "queued when the broker is back" instead of
a 500 that invites the client to create the same work twice.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

BROKER_DOWN = (BrokerError, ConnectionError, TimeoutError, OSError)
QUEUED_LATER = "Saved; the task queue is unreachable, so it is queued when the broker is back (nothing to resubmit)."

_deferred: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("imagineer_deferred_sends", default=None)


def send(
    task: Any, *, task_id: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
) -> bool:
    """Publish ``task`` under ``task_id``; False (and logged) when the broker is unreachable."""
    try:
        task.apply_async(args=list(args), kwargs=kwargs or {}, task_id=task_id, **options)
    except BROKER_DOWN as exc:
        logger.warning("Broker unreachable; %s %s stays queued for the reconciler: %s", task.name, task_id, exc)
        deferred = _deferred.get()
        if deferred is not None:
            deferred.append(task_id)
        return False
    return True


def send_on_commit(task: Any, *, task_id: str, args: Sequence[Any] = (), **options: Any) -> Callable[[], bool]:
    """The callback for ``transaction.on_commit``."""

    def callback() -> bool:
        return send(task, task_id=task_id, args=args, **options)

    return callback


class DeferredSendMiddleware:
    """A request whose work was saved but not sent answers 202 with :data:`QUEUED_LATER`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _deferred.set([])
        try:
            response = self.get_response(request)
            deferred = _deferred.get() or []
        finally:
            _deferred.reset(token)
        if not deferred:
            return response
        response["X-Imagineer-Queued"] = "when-broker-back"
        if request.path.startswith("/api/"):
            if response.status_code in (200, 201, 202):
                response.status_code = 202
                if not response.streaming and response.get("Content-Type", "").startswith("application/json"):
                    body = json.loads(response.content or b"null")
                    if isinstance(body, dict):
                        body["queued"] = QUEUED_LATER
                        response.content = json.dumps(body).encode()
        elif hasattr(request, "_messages"):
            messages.warning(request, QUEUED_LATER)
        return response
