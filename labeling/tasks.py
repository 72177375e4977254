"""Labeling-queue tasks: thin wrappers over labeling.services that take ids and retry
transient failures (timeout, rate limit, engine not answering) with exponential backoff.

Services import these tasks to enqueue them; the tasks import the services inside their
bodies, so the two modules never import each other at load time.
"""

from __future__ import annotations

import random
from typing import Any

from celery import shared_task
from django.conf import settings

from imagineer.jobs import TRANSIENT_DB_ERRORS, job_task
from labeling.backends import TransientLabelError
from labeling.data_models import LabelImageOutcome

# The container's own timeout fires first; this only catches a worker stuck elsewhere.
_TIME_LIMIT = settings.IMAGINEER_LABEL_TIMEOUT + 120
_SOFT_TIME_LIMIT = settings.IMAGINEER_LABEL_TIMEOUT + 60


def _countdown(retries: int) -> float:
    base = settings.IMAGINEER_LABEL_RETRY_BACKOFF
    return base * 2**retries + random.uniform(0, base)


@shared_task(bind=True, acks_late=True, max_retries=None, time_limit=_TIME_LIMIT, soft_time_limit=_SOFT_TIME_LIMIT)
def label_image_task(
    self,
    image_id: int,
    prompt_type: str = "default",
    backend: str | None = None,
    force: bool = False,
    user_id: int | None = None,
) -> LabelImageOutcome:
    from labeling.services import image_label_run

    try:
        return image_label_run(
            image_id=image_id, prompt_type=prompt_type, backend=backend, force=force, user_id=user_id
        )
    except TransientLabelError as exc:
        if self.request.retries >= settings.IMAGINEER_LABEL_MAX_RETRIES:
            raise
        raise self.retry(exc=exc, countdown=_countdown(self.request.retries)) from None


@job_task(name="labeling.tasks.labeling_job_fan_out_task")
def labeling_job_fan_out_task(self: Any, job_id: int) -> int:
    from labeling.services import labeling_job_fail, labeling_job_fan_out

    try:
        return len(labeling_job_fan_out(job_id=job_id, task_id=self.request.id))
    except TRANSIENT_DB_ERRORS:
        raise  # retried by the wrapper: the job did not fail
    except Exception as exc:
        labeling_job_fail(job_id=job_id, error=f"Could not start labeling: {exc}")
        raise


@job_task(
    name="labeling.tasks.labeling_job_item_task",
    # The labeling retries (the service records the last one as a failure) and room for
    # retries after dropped database connections.
    max_retries=settings.IMAGINEER_LABEL_MAX_RETRIES + 8,
    time_limit=_TIME_LIMIT,
    soft_time_limit=_SOFT_TIME_LIMIT,
)
def labeling_job_item_task(self: Any, item_id: int) -> str:
    from labeling.services import labeling_job_item_label

    final = self.request.retries >= settings.IMAGINEER_LABEL_MAX_RETRIES
    try:
        return labeling_job_item_label(item_id=item_id, final_attempt=final, task_id=self.request.id)
    except TransientLabelError as exc:
        raise self.retry(exc=exc, countdown=_countdown(self.request.retries)) from None
