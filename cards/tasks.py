"""Celery tasks of finishing: thin, they take ids and call ``cards.worker`` inside the body.

``hires_run_task`` is routed to the gpu queue (``cards.tasks.hires_*`` in settings): it needs
the resident pipeline. ``finishing_run_task`` runs on the default queue.
"""

from __future__ import annotations

from typing import Any

from imagineer.jobs import job_task


@job_task(name="cards.tasks.finishing_run")
def finishing_run_task(self: Any, job_id: int) -> dict:
    from cards.worker import finishing_run

    return finishing_run(job_id=job_id, task_id=self.request.id)


@job_task(name="cards.tasks.hires_run")
def hires_run_task(self: Any, job_id: int) -> dict:
    from cards.hires_worker import hires_run

    return hires_run(job_id=job_id, task_id=self.request.id)
