"""Celery tasks of the albums app (``default`` queue): thin wrappers over services.

Services import these tasks to enqueue them; the tasks import the services inside their
bodies, so the two modules never import each other at load time.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def scrape_job_run_task(job_id: int) -> None:
    """Run a scrape job; a duplicate delivery finds the job already claimed and does nothing."""
    from albums.services.scraping import scrape_job_run

    scrape_job_run(job_id=job_id)
