"""Per-user limits on queued work: counting and policy in one place.

One creator once queued 43 runs (50,387 jobs) in five minutes. Every service that starts
background work calls :func:`limit_check` first, with how much it is about to add; past a
limit it raises :class:`LimitExceeded`, which the API answers with 429 (and ``Retry-After``)
and pages show like any other refusal. The message says what is already running and when
to try again. Limits are settings (``IMAGINEER_LIMIT_*``, 0 = no limit); curators are exempt
while ``IMAGINEER_LIMITS_EXEMPT_CURATORS`` is on; ``user=None`` (management commands run by an
operator) is never limited.

Concurrent starts by one user are serialised by locking the user's row, so two requests
cannot both see room for one more. Callers are inside a transaction (the services are atomic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Avg, DurationField, ExpressionWrapper, F, QuerySet
from django.utils import timezone

from imagineer.errors import ApplicationError
from imagineer.permissions import is_curator

DEFAULT_RETRY_SECONDS = 60
RETRY_SECONDS_MAX = 3600
SHOWN = 3  # active items named in the message
PACE_SAMPLE = 50  # recent finished jobs that give the pace of a generation job
PACE_WINDOW = timedelta(days=7)


class LimitExceeded(ApplicationError):
    """Too much of one kind of work is already queued or running for this user."""

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message, code="limit_exceeded")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Kind:
    setting: str
    model: str  # "app_label.ModelName"
    active: tuple[str, ...]  # statuses that count
    singular: str
    plural: str
    # What the active work is, in words; and seconds until ``excess`` of it has finished (None: unknown).
    describe: Callable[[QuerySet], str]
    eta: Callable[[QuerySet, int], float | None]


def _listed(describe_one: Callable[[Any], str]) -> Callable[[QuerySet], str]:
    def describe(active: QuerySet) -> str:
        count = active.count()
        shown = "; ".join(describe_one(item) for item in active[:SHOWN])
        return shown + (f" and {count - SHOWN} more" if count > SHOWN else "")

    return describe


def _jobs(active: QuerySet) -> str:
    runs = active.exclude(run=None).values("run").distinct().count()
    single = active.filter(run=None).count()
    return f"from {runs} batch run{'s' if runs != 1 else ''} and {single} single image{'s' if single != 1 else ''}"


def _run(run: Any) -> str:
    name = run.template_snapshot.get("name", "a template")
    return f"run {run.pk} of {name!r} ({run.completed_items + run.failed_items}/{run.total_items} done)"


def _labeling(job: Any) -> str:
    return f"labeling job {job.pk} ({job.status})"


def _training(run: Any) -> str:
    return f"training run {run.pk} {run.name!r} ({run.status}, step {run.current_step}/{run.max_steps})"


def _scrape(job: Any) -> str:
    return f"scrape job {job.pk} ({job.status}, {job.images_downloaded} images so far)"


def _generation_pace() -> float | None:
    """Recent seconds per generated image on this installation, or None before there are any."""
    job_model = apps.get_model("generation.GenerationJob")
    recent = job_model.objects.filter(
        status="succeeded", started_at__isnull=False, finished_at__gte=timezone.now() - PACE_WINDOW
    ).order_by("-finished_at")[:PACE_SAMPLE]
    took = job_model.objects.filter(pk__in=recent.values("pk")).aggregate(
        average=Avg(ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField()))
    )["average"]
    return took.total_seconds() if took else None


def _jobs_eta(active: QuerySet, excess: int) -> float | None:
    pace = _generation_pace()
    return excess * pace if pace else None


def _runs_eta(active: QuerySet, excess: int) -> float | None:
    """The runs closest to their end free the first slots."""
    pace = _generation_pace()
    left = sorted(run.total_items - run.completed_items - run.failed_items for run in active)
    return sum(left[:excess]) * pace if pace and left else None


def _training_eta(active: QuerySet, excess: int) -> float | None:
    known = sorted(run.eta_seconds for run in active if run.eta_seconds)
    return known[excess - 1] if len(known) >= excess else None


def _unknown(active: QuerySet, excess: int) -> float | None:
    return None


KINDS = {
    "jobs": Kind(
        "IMAGINEER_LIMIT_QUEUED_JOBS",
        "generation.GenerationJob",
        ("queued", "running", "cancelling"),
        "image",
        "images",
        _jobs,
        _jobs_eta,
    ),
    "runs": Kind(
        "IMAGINEER_LIMIT_ACTIVE_RUNS",
        "generation.BatchGenerationRun",
        ("queued", "running", "cancelling"),
        "batch run",
        "batch runs",
        _listed(_run),
        _runs_eta,
    ),
    "labeling": Kind(
        "IMAGINEER_LIMIT_ACTIVE_LABELING",
        "labeling.LabelingJob",
        ("queued", "running", "cancelling"),
        "labeling job",
        "labeling jobs",
        _listed(_labeling),
        _unknown,
    ),
    "training": Kind(
        "IMAGINEER_LIMIT_ACTIVE_TRAINING",
        "training.TrainingRun",
        ("queued", "running", "cancelling"),
        "training run",
        "training runs",
        _listed(_training),
        _training_eta,
    ),
    "scraping": Kind(
        "IMAGINEER_LIMIT_ACTIVE_SCRAPES",
        "albums.ScrapeJob",
        ("queued", "running", "cancelling"),
        "scrape job",
        "scrape jobs",
        _listed(_scrape),
        _unknown,
    ),
}


def _active(kind: Kind, user: Any) -> QuerySet:
    model = apps.get_model(kind.model)
    return model.objects.filter(created_by=user, status__in=kind.active).order_by("created_at", "pk")


def _when(seconds: int) -> str:
    if seconds < 90:
        return f"in about {seconds} seconds"
    return f"in about {round(seconds / 60)} minutes"


def limit_check(*, user: Any, **adding: int) -> None:
    """Refuse (LimitExceeded) if ``user`` starting ``adding`` more work would pass a limit.

    ``adding`` names kinds and amounts: ``limit_check(user=u, runs=1, jobs=78)``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return
    if settings.IMAGINEER_LIMITS_EXEMPT_CURATORS and is_curator(user):
        return
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk"))
    for name, amount in adding.items():
        kind = KINDS[name]
        limit = getattr(settings, kind.setting)
        if not limit:
            continue
        active = _active(kind, user)
        count = active.count()
        if count + amount <= limit:
            continue
        excess = count + amount - limit
        estimate = kind.eta(active, excess)
        retry_after = max(1, min(RETRY_SECONDS_MAX, math.ceil(estimate))) if estimate else DEFAULT_RETRY_SECONDS
        if amount > limit:
            message = (
                f"This would queue {amount:,} {kind.plural}; one user may have at most {limit:,} queued or running "
                f"({kind.setting}). Split the work, or ask an administrator to raise the limit."
            )
        else:
            when = _when(retry_after) if estimate else f"check again in {DEFAULT_RETRY_SECONDS} seconds"
            message = (
                f"You already have {count:,} {kind.singular if count == 1 else kind.plural} queued or running: {kind.describe(active)}. The limit is "
                f"{limit:,} per user ({kind.setting}). Try again when {excess:,} of them "
                f"{'has' if excess == 1 else 'have'} finished ({when}), or cancel some."
            )
        raise LimitExceeded(message, retry_after=retry_after)
