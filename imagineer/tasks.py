"""Housekeeping on the default queue: the reconciler pass that beat sends every few seconds."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="imagineer.tasks.reconcile", ignore_result=True, acks_late=False)
def reconcile() -> dict[str, Any]:
    from imagineer.reconcile import reconcile as reconcile_pass

    return reconcile_pass().as_dict()
