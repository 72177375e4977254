"""Reads for the API and the pages: labeling job progress and lists."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.db.models import QuerySet

from albums.models import Album
from labeling.models import LabelingJob, LabelingJobError

MAX_ERRORS_SHOWN = 50


class LabelingJobProgress(TypedDict):
    id: int
    album_id: int
    status: str
    prompt_type: str
    backend: str
    force: bool
    total: int
    done: int
    failed: int
    skipped: int
    remaining: int
    percent: int
    progress_done: int
    progress_total: int
    is_active: bool
    errors: list[LabelingJobError]
    error: str
    task_id: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def labeling_job_progress(*, job: LabelingJob) -> LabelingJobProgress:
    processed = job.done + job.failed + job.skipped
    return {
        "id": job.pk,
        "album_id": job.album_id,
        "status": job.status,
        "prompt_type": job.prompt_type,
        "backend": job.backend,
        "force": job.force,
        "total": job.progress_total,
        "done": job.done,
        "failed": job.failed,
        "skipped": job.skipped,
        "remaining": max(job.progress_total - processed, 0),
        "percent": round(100 * processed / job.progress_total)
        if job.progress_total
        else (100 if not job.is_active else 0),
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "is_active": job.is_active,
        "errors": list(job.errors[-MAX_ERRORS_SHOWN:]),
        "error": job.error,
        "task_id": job.task_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def album_labeling_job_latest(*, album: Album) -> LabelingJob | None:
    return LabelingJob.objects.filter(album=album).order_by("-created_at", "-id").first()


def labeling_jobs_list(*, album: Album | None = None) -> QuerySet[LabelingJob]:
    jobs = LabelingJob.objects.select_related("album", "created_by")
    return jobs.filter(album=album) if album is not None else jobs
