"""Celery tasks of the gpu queue (routed by ``generation.tasks.*`` in settings).

Thin: they take ids and call the engine's chunk executor. The gpu worker process keeps the
engine resident; it starts loading it as soon as the pool process starts, in the background,
so the first chunk does not pay for it alone.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_process_init

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30


@shared_task(
    bind=True,
    name="generation.tasks.chunk_generate",
    acks_late=True,
    reject_on_worker_lost=True,
)
def chunk_generate(self, job_ids: list[int]) -> dict:
    from generation.engine.execute import chunk_execute

    return chunk_execute(job_ids=job_ids, task_id=self.request.id)


def _consumes_gpu_queue(sender) -> bool:
    from imagineer.celery import app

    try:
        return "gpu" in app.amqp.queues.consume_from
    except (AttributeError, TypeError):
        return False


@worker_process_init.connect
def _engine_preload(sender=None, **kwargs) -> None:
    if not _consumes_gpu_queue(sender):
        return

    def preload_and_heartbeat() -> None:
        from django.db import connection

        from generation.engine.execute import engine_status_write
        from generation.engine.runtime import engine_get

        try:
            engine = engine_get()
        except Exception:
            logger.exception("Loading the generation engine failed; the first gpu task will try again")
            connection.close()
            return
        # Pages read EngineWorker.last_seen to tell a live, idle worker from a dead one.
        while True:
            try:
                engine_status_write(engine)
            except Exception:
                logger.exception("Could not record the engine status")
            finally:
                connection.close()
            time.sleep(HEARTBEAT_SECONDS)

    threading.Thread(target=preload_and_heartbeat, name="engine-heartbeat", daemon=True).start()
