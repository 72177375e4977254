"""Generation jobs: submit, cancel, and the writes a gpu worker makes while it runs them.

A job is claimed by a conditional status update (queued -> running, or running under the
same task id when a message is redelivered after a worker crash), and it is marked
succeeded in the same transaction that creates its Image row, after the file is complete:
a redelivered message can neither duplicate an image nor lose one.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from albums.models import Album, AlbumImage, Image
from generation.engine.lora_files import lora_fit_error
from generation.engine.schedulers import SCHEDULERS
from generation.engine.source import ModelSourceError, model_base, model_source
from generation.models import GUIDANCE_MAX, GUIDANCE_MIN, STEPS_MAX, STEPS_MIN, GenerationJob, Lora
from generation.services.templates import lora_weight_parse, size_validate
from imagineer.errors import ApplicationError, field_error
from imagineer.limits import limit_check
from imagineer.outbox import send_on_commit

SEED_MAX = 2**32 - 1


def seed_random() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def lora_stack_snapshot(loras: Sequence[tuple[Lora, Decimal]], *, field: str = "loras") -> list[dict[str, Any]]:
    """Validate a LoRA stack against the configured model and freeze it as the job's recipe."""
    snapshot, seen = [], set()
    try:
        base = model_base(model_source())
    except ModelSourceError as exc:
        raise ApplicationError(str(exc)) from None
    for lora, raw_weight in loras:
        weight = lora_weight_parse(raw_weight, field=field)
        if lora.pk in seen:
            raise field_error(field, f"LoRA {lora.name!r} is in the stack twice; list each LoRA once.")
        seen.add(lora.pk)
        problem = lora_fit_error(lora_name=lora.name, lora_base=lora.base, model_base=base)
        if problem:
            raise field_error(field, problem, code="lora_unfit")
        snapshot.append({"id": lora.pk, "name": lora.name, "sha256": lora.sha256, "weight": str(weight)})
    return snapshot


def generation_params_validate(
    *, prompt: str, negative_prompt: str, width: int, height: int, steps: int, guidance_scale: float, scheduler: str
) -> None:
    errors: dict[str, list[str]] = {}
    limit = settings.IMAGINEER_MAX_PROMPT_CHARS
    if not prompt or not prompt.strip():
        errors["prompt"] = ["Write a prompt: it describes the image to make."]
    elif len(prompt) > limit:
        errors["prompt"] = [f"The prompt is {len(prompt):,} characters; the limit is {limit:,}."]
    if len(negative_prompt or "") > limit:
        errors["negative_prompt"] = [f"The negative prompt is {len(negative_prompt):,} characters; limit {limit:,}."]
    if not isinstance(steps, int) or isinstance(steps, bool) or not STEPS_MIN <= steps <= STEPS_MAX:
        errors["steps"] = [f"Steps must be a whole number from {STEPS_MIN} to {STEPS_MAX}; got {steps!r}."]
    try:
        guidance_ok = GUIDANCE_MIN <= float(guidance_scale) <= GUIDANCE_MAX
    except (TypeError, ValueError):
        guidance_ok = False
    if not guidance_ok:
        errors["guidance_scale"] = [f"Guidance scale must be from {GUIDANCE_MIN:g} to {GUIDANCE_MAX:g}."]
    if scheduler and scheduler not in SCHEDULERS:
        errors["scheduler"] = [f"Unknown scheduler {scheduler!r}; choose one of {', '.join(SCHEDULERS)}."]
    try:
        size_validate(width=width, height=height)
    except ApplicationError as exc:
        errors.update(exc.fields)
    if errors:
        raise ApplicationError(next(iter(errors.values()))[0], fields=errors)


def seed_validate(seed: Any, *, field: str = "seed") -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise field_error(field, f"Seed must be a whole number from 0 to {SEED_MAX}; got {seed!r}.")
    return seed


def chunks_enqueue(job_ids: Sequence[int], *, chunk_size: int | None = None) -> list[str]:
    """Split jobs into gpu tasks; each job records its task id so a redelivery can reclaim it."""
    from generation.tasks import chunk_generate

    size = chunk_size or settings.IMAGINEER_CHUNK_SIZE
    task_ids = []
    for start in range(0, len(job_ids), size):
        chunk = list(job_ids[start : start + size])
        task_id = str(uuid.uuid4())
        GenerationJob.objects.filter(pk__in=chunk).update(task_id=task_id)
        transaction.on_commit(send_on_commit(chunk_generate, task_id=task_id, args=[chunk]))
        task_ids.append(task_id)
    return task_ids


@transaction.atomic
def job_submit(
    *,
    prompt: str,
    negative_prompt: str = "",
    width: int = 512,
    height: int = 512,
    steps: int = 25,
    guidance_scale: float = 8.0,
    seed: int | None = None,
    loras: Sequence[tuple[Lora, Decimal]] = (),
    scheduler: str | None = None,
    album: Album | None = None,
    created_by: User | None = None,
) -> GenerationJob:
    """One image: validate everything, store the job (seed chosen now), run it on a gpu worker."""
    limit_check(user=created_by, jobs=1)
    scheduler = scheduler or settings.IMAGINEER_SCHEDULER
    generation_params_validate(
        prompt=prompt,
        negative_prompt=negative_prompt,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=guidance_scale,
        scheduler=scheduler,
    )
    seed = seed_random() if seed is None else seed_validate(seed)
    job = GenerationJob.objects.create(
        prompt=prompt.strip(),
        negative_prompt=(negative_prompt or "").strip(),
        prompt_parts={"prompt": prompt.strip()},
        width=width,
        height=height,
        steps=steps,
        guidance_scale=float(guidance_scale),
        seed=seed,
        scheduler=scheduler,
        lora_stack=lora_stack_snapshot(loras),
        album=album,
        created_by=created_by,
    )
    chunks_enqueue([job.pk])
    job.refresh_from_db(fields=["task_id"])
    return job


@transaction.atomic
def job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Queued: cancelled now. Running: stops at the next denoising step. Finished: refused."""
    jobs = GenerationJob.objects.filter(pk=job.pk)
    dropped = jobs.filter(status=GenerationJob.Status.QUEUED).update(
        status=GenerationJob.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now()
    )
    if not dropped and not jobs.filter(status=GenerationJob.Status.RUNNING).update(cancel_requested=True):
        job.refresh_from_db()
        raise ApplicationError(f"Job {job.pk} has already finished ({job.get_status_display().lower()}).")
    job.refresh_from_db()
    if job.run_id:
        from generation.services.runs import run_refresh

        run_refresh(run_id=job.run_id)
    return job


# --- writes made by the gpu worker ---------------------------------------------------------


def jobs_claim(*, job_ids: Sequence[int], task_id: str) -> list[GenerationJob]:
    """Claim this task's jobs; a redelivered task (same id) reclaims the ones its dead worker held."""
    now = timezone.now()
    GenerationJob.objects.filter(pk__in=job_ids, status=GenerationJob.Status.QUEUED, cancel_requested=True).update(
        status=GenerationJob.Status.CANCELLED, finished_at=now
    )
    GenerationJob.objects.filter(
        Q(status=GenerationJob.Status.QUEUED) | Q(status=GenerationJob.Status.RUNNING, result_image__isnull=True),
        pk__in=job_ids,
        task_id=task_id,
        cancel_requested=False,
    ).update(status=GenerationJob.Status.RUNNING, started_at=now, progress_done=0)
    return list(
        GenerationJob.objects.filter(pk__in=job_ids, task_id=task_id, status=GenerationJob.Status.RUNNING)
        .select_related("run", "album", "created_by")
        .order_by("row_index", "pk")
    )


def jobs_progress(*, job_ids: Sequence[int], step: int) -> int:
    """Record the denoising step; returns how many of the jobs still want their image."""
    return GenerationJob.objects.filter(
        pk__in=job_ids, status=GenerationJob.Status.RUNNING, cancel_requested=False
    ).update(progress_done=step)


def jobs_cancel_requested(*, job_ids: Sequence[int]) -> set[int]:
    return set(GenerationJob.objects.filter(pk__in=job_ids, cancel_requested=True).values_list("pk", flat=True))


def job_mark_cancelled(*, job_id: int) -> None:
    GenerationJob.objects.filter(pk=job_id, status=GenerationJob.Status.RUNNING).update(
        status=GenerationJob.Status.CANCELLED, finished_at=timezone.now()
    )


def job_fail(*, job_id: int, error: str) -> None:
    GenerationJob.objects.filter(pk=job_id, status=GenerationJob.Status.RUNNING).update(
        status=GenerationJob.Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )


@transaction.atomic
def job_image_record(
    *, job_id: int, file_name: str, width: int, height: int, file_size: int, sha256: str, recipe: dict
) -> Image | None:
    """Create the Image row for a complete file and mark the job succeeded, exactly once."""
    job = GenerationJob.objects.select_for_update().get(pk=job_id)
    if job.status != GenerationJob.Status.RUNNING or job.result_image_id:
        return None
    if job.cancel_requested:
        job.status, job.finished_at = GenerationJob.Status.CANCELLED, timezone.now()
        job.save(update_fields=["status", "finished_at"])
        return None
    image = Image.objects.create(
        file=file_name,
        width=width,
        height=height,
        file_size=file_size,
        sha256=sha256,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        recipe=recipe,
        title=(job.prompt_parts.get("title") or "")[:300],
        created_by=job.created_by,
    )
    if job.album_id:
        position = (job.row_index + 1) if job.row_index is not None else 0
        if position == 0:
            last = AlbumImage.objects.filter(album_id=job.album_id).order_by("-position").first()
            position = (last.position + 1) if last else 1
        AlbumImage.objects.get_or_create(album_id=job.album_id, image=image, defaults={"position": position})
    job.status = GenerationJob.Status.SUCCEEDED
    job.result_image = image
    job.progress_done = job.steps
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "result_image", "progress_done", "finished_at"])
    return image
