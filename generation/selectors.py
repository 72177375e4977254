"""Reads for pages and the API: run progress, engine status, job lists. No torch here."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from albums.models import Image
from generation.engine.source import NOISE_NOTE, ModelSourceError, model_base
from generation.model_config import model_source
from generation.models import BatchGenerationRun, BatchTemplate, BatchTemplateLora, EngineWorker, GenerationJob, Lora
from generation.types import RunCurrentItem, RunProgress
from training.models import TrainingRun

ENGINE_STALE_AFTER = timedelta(minutes=2)


def run_progress(*, run: BatchGenerationRun) -> RunProgress:
    """Everything a progress bar needs, from the database only (one query for the items).

    The ETA comes from denoising steps, so it exists from the first progress write of the
    first chunk: seconds since the run started / steps done x steps left.
    """
    jobs = list(
        GenerationJob.objects.filter(run=run)
        .order_by("row_index")
        .values(
            "row_index",
            "status",
            "result_image_id",
            "error",
            "prompt",
            "progress_done",
            "steps",
            "attempts",
            "max_attempts",
        )
    )
    counts = dict.fromkeys(GenerationJob.Status.values, 0)
    steps_done = steps_left = 0
    in_progress = GenerationJob.IN_PROGRESS
    for job in jobs:
        counts[job["status"]] += 1
        if job["status"] == GenerationJob.Status.SUCCEEDED:
            steps_done += job["steps"]
        elif job["status"] in in_progress:
            steps_done += job["progress_done"]
            steps_left += job["steps"] - job["progress_done"]
        elif job["status"] == GenerationJob.Status.QUEUED:
            steps_left += job["steps"]
    running = [job for job in jobs if job["status"] in in_progress]
    current: RunCurrentItem | None = None
    if running:
        job = max(running, key=lambda item: (item["progress_done"], -(item["row_index"] or 0)))
        current = {
            "row_index": job["row_index"],
            "prompt": job["prompt"],
            "step": job["progress_done"],
            "steps": job["steps"],
        }
    eta: float | None = None
    if run.is_finished:
        eta = 0 if run.status == BatchGenerationRun.Status.COMPLETED else None
    elif steps_left and steps_done and run.started_at:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta = round(elapsed / steps_done * steps_left, 1)
    return {
        "status": run.status,
        "total": run.total_items or len(jobs),
        "completed": counts["succeeded"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "queued": counts["queued"],
        "running": counts["running"],
        "cancelling": counts["cancelling"],
        "steps_done": steps_done,
        "steps_total": steps_done + steps_left,
        "current_item": current,
        "eta_seconds": eta,
        "items": [
            {
                "row_index": job["row_index"],
                "status": job["status"],
                "step": job["steps"] if job["status"] == GenerationJob.Status.SUCCEEDED else job["progress_done"],
                "image_id": job["result_image_id"],
                "error": job["error"],
                "attempts": job["attempts"],
                "attempt_limit": job["max_attempts"] or settings.IMAGINEER_JOB_MAX_ATTEMPTS,
            }
            for job in jobs
        ],
    }


def engine_status() -> dict:
    """What the gpu workers report they have loaded (written by the worker into EngineWorker)."""
    try:
        source = model_source()
        configured, configured_error = source.model_id, ""
        is_noise = source.is_noise
    except ModelSourceError as exc:
        configured, configured_error, is_noise = "", str(exc), False
    workers = list(EngineWorker.objects.order_by("-last_seen")[:20])
    now = timezone.now()
    live = [worker for worker in workers if now - worker.last_seen < ENGINE_STALE_AFTER]
    latest = live[0] if live else (workers[0] if workers else None)
    return {
        "model_id": latest.model_id if latest else configured,
        "configured_model": configured,
        "configured_model_error": configured_error,
        "is_noise_model": latest.is_noise_model if latest else is_noise,
        "noise_note": NOISE_NOTE if (latest.is_noise_model if latest else is_noise) else "",
        "device": latest.device if latest else "",
        "loaded": bool(latest and latest.loaded and latest in live),
        "last_seen": latest.last_seen if latest else None,
        "workers": [
            {
                "hostname": worker.hostname,
                "model_id": worker.model_id,
                "device": worker.device,
                "loaded": worker.loaded,
                "last_seen": worker.last_seen,
                "live": worker in live,
            }
            for worker in workers
        ],
        "info": latest.info if latest else {},
    }


def job_list(*, status: str | None = None) -> QuerySet[GenerationJob]:
    jobs = GenerationJob.objects.select_related("run", "result_image", "album", "created_by")
    if status:
        jobs = jobs.filter(status=status)
    return jobs.order_by("-created_at", "-id")


# --- what pages and the API list ---------------------------------------------------------------

ACTIVE_RUN_STATUSES = (BatchGenerationRun.STATUS_QUEUED, *BatchGenerationRun.IN_PROGRESS)
ACTIVE_JOB_STATUSES = (GenerationJob.STATUS_QUEUED, *GenerationJob.IN_PROGRESS)


def template_list() -> QuerySet[BatchTemplate]:
    """Templates with their LoRA stack in stack order (one query for every stack)."""
    stack = BatchTemplateLora.objects.select_related("lora").order_by("position", "id")
    return BatchTemplate.objects.prefetch_related(Prefetch("lora_stack", queryset=stack))


def run_list() -> QuerySet[BatchGenerationRun]:
    return BatchGenerationRun.objects.select_related("album", "template", "created_by")


def job_queue(*, limit: int) -> list[GenerationJob]:
    """Queued and running jobs, oldest first (the order the workers take them)."""
    return list(job_list().filter(status__in=ACTIVE_JOB_STATUSES).order_by("created_at", "id")[:limit])


def job_history(*, limit: int) -> list[GenerationJob]:
    """Finished jobs, newest first."""
    return list(job_list().exclude(status__in=ACTIVE_JOB_STATUSES)[:limit])


def template_runs(*, template: BatchTemplate) -> QuerySet[BatchGenerationRun]:
    return BatchGenerationRun.objects.filter(template=template)


def runs_active() -> QuerySet[BatchGenerationRun]:
    return BatchGenerationRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).select_related("album")


def runs_recent(*, limit: int = 20) -> list[BatchGenerationRun]:
    return list(BatchGenerationRun.objects.select_related("album").order_by("-created_at", "-id")[:limit])


def lora_list() -> QuerySet[Lora]:
    """The LoRA library with how many templates use each LoRA."""
    return Lora.objects.annotate(template_uses=Count("template_entries"))


def lora_library() -> QuerySet[Lora]:
    """The LoRA library page: each LoRA with the templates using it and the training runs that
    made it, in a constant number of queries whatever the library's size."""
    return (
        lora_list()
        .select_related("created_by")
        .prefetch_related(
            Prefetch("templates", queryset=BatchTemplate.objects.only("id", "name", "slug").distinct()),
            Prefetch("training_runs", queryset=TrainingRun.objects.only("id", "name", "lora_id")),
        )
    )


LORA_SAMPLES = 8


def model_base_configured() -> str:
    """The configured model's base (``sd15``...), or ``unknown`` when it cannot be read: a page
    that only shows which LoRAs fit must not fail over a misconfigured model."""
    try:
        return model_base(model_source())
    except ModelSourceError:
        return "unknown"


LORA_LIST_SAMPLES = 3
# The library page looks at the newest finished jobs that used any LoRA, in one query.
LORA_LIST_SAMPLE_SCAN = 500


def lora_samples_by_sha(
    *, per_lora: int = LORA_LIST_SAMPLES, scan: int = LORA_LIST_SAMPLE_SCAN
) -> dict[str, list[int]]:
    """A few recent image ids made with each LoRA (by sha256), for the library page: one query
    over the newest ``scan`` jobs with a stack, whatever the library's size."""
    jobs = (
        GenerationJob.objects.filter(result_image__isnull=False)
        .exclude(lora_stack=[])
        .order_by("-id")
        .values_list("result_image_id", "lora_stack")[:scan]
    )
    samples: dict[str, list[int]] = {}
    for image_id, stack in jobs:
        for entry in stack or []:
            found = samples.setdefault(str(entry.get("sha256", "")), [])
            if len(found) < per_lora and image_id not in found:
                found.append(image_id)
    return samples


def lora_samples(*, lora: Lora, limit: int = LORA_SAMPLES) -> list[Image]:
    """The newest images made with this LoRA in their stack (matched by the file's sha256)."""
    return list(
        Image.objects.filter(generation_job__lora_stack__icontains=lora.sha256).order_by("-created_at", "-id")[:limit]
    )
