"""gpu-queue tasks (routed by CELERY_TASK_ROUTES "training.tasks.*"): thin wrappers over services.

Services import these tasks to enqueue them; the tasks import the services inside their
bodies, so the two modules never import each other at load time.
"""

from __future__ import annotations

import logging
from typing import Any

from imagineer.jobs import job_task, stale_seconds

logger = logging.getLogger(__name__)


def _resident_engine_settle() -> None:
    """Wait until the worker's resident generation engine is loaded (it loads in a background
    thread when the worker starts; ``engine_get`` holds the engine lock while it loads), so our
    own model load never runs beside it: concurrent diffusers loads break each other, and two
    at once would double the peak memory."""
    from generation.worker import engine_get

    try:
        engine_get()
    except Exception:
        # The training load reports the same problem on the run, where a user sees it.
        logger.warning("The resident generation engine did not load; training loads its own model anyway.")


@job_task(name="training.tasks.training_run_task", max_retries=100)
def training_run_task(self: Any, run_id: int) -> str:
    from training.services.execute import Outcome, training_execute

    outcome = training_execute(run_id=run_id, task_id=self.request.id, before_load=_resident_engine_settle)
    if outcome == Outcome.BUSY:
        # Redelivered while the run looks alive (its worker may just have died): look again once
        # its heartbeat could have gone stale; the claim then takes it over from its checkpoint.
        raise self.retry(countdown=max(1, stale_seconds() // 2))
    return str(outcome)
