"""Celery tasks of the gpu queue (routed by ``generation.tasks.*`` in settings).

Thin: they take ids and call ``generation.worker``, imported inside the body (services import
these tasks at module level; tasks never import services at module level: one direction).
The gpu worker process keeps the engine resident; it starts loading it as soon as the pool
process starts, in the background, so the first chunk does not pay for it alone.
"""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_process_init

from imagineer.jobs import job_task

HEARTBEAT_SECONDS = 30


@job_task(name="generation.tasks.chunk_generate")
def chunk_generate_task(self: Any, job_ids: list[int]) -> dict:
    from generation.models import GenerationJob
    from generation.worker import chunk_run
    from imagineer.jobs import held_elsewhere

    summary = dict(chunk_run(job_ids=job_ids, task_id=self.request.id))
    wait = held_elsewhere(GenerationJob, task_id=self.request.id)
    if wait is not None:
        # Redelivered while another process holds rows of it (a visibility timeout shorter than
        # the chunk): they are taken over only once their heartbeat is stale, so look again then.
        raise self.retry(countdown=wait)
    return summary


def _consumes_gpu_queue(sender: Any) -> bool:
    from imagineer.celery import app

    try:
        return "gpu" in app.amqp.queues.consume_from
    except (AttributeError, TypeError):
        return False


@worker_process_init.connect
def _engine_preload(sender: Any = None, **kwargs: Any) -> None:
    if not _consumes_gpu_queue(sender):
        return
    from generation.worker import engine_preload_forever

    threading.Thread(
        target=engine_preload_forever, args=(HEARTBEAT_SECONDS,), name="engine-heartbeat", daemon=True
    ).start()
