"""Celery tasks of the albums app (``default`` queue): thin wrappers over services.

Services import these tasks to enqueue them; the tasks import the services inside their
bodies, so the two modules never import each other at load time.
"""

from __future__ import annotations

from typing import Any

from imagineer.jobs import job_task, stale_seconds, worker_name


@job_task(name="albums.tasks.scrape_job_run_task", ignore_result=True)
def scrape_job_run_task(self: Any, job_id: int) -> None:
    """Run a scrape job. A duplicate delivery finds it finished or held and does nothing; a
    redelivery while another worker still holds it looks again once that worker's heartbeat
    could have gone stale, and then takes it over."""
    from albums.services.scraping import scrape_job_run

    job = scrape_job_run(job_id=job_id, task_id=self.request.id)
    if job.is_in_progress and job.worker != worker_name():
        raise self.retry(countdown=max(1, stale_seconds() // 2))
