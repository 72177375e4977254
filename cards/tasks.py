"""Celery tasks of finishing: thin, they take ids and call ``cards.worker`` inside the body.

``gpu_run_task`` (the generated back and the hires pass) is routed to the gpu queue
(``cards.tasks.gpu_run`` in settings): it needs the resident pipeline. ``finishing_run_task`` runs on the default queue.
"""

from __future__ import annotations

from typing import Any

from imagineer.jobs import job_task


@job_task(name="cards.tasks.finishing_run")
def finishing_run_task(self: Any, job_id: int) -> dict:
    from cards.worker import finishing_run

    return finishing_run(job_id=job_id, task_id=self.request.id)


@job_task(name="cards.tasks.gpu_run")
def gpu_run_task(self: Any, job_id: int) -> dict:
    from cards.gpu_worker import gpu_run

    return gpu_run(job_id=job_id, task_id=self.request.id)
