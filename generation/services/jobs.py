"""Generation jobs: validate, submit, enqueue in chunks, cancel.

What a gpu worker writes while it runs them (claim, progress, the Image row) is in
``generation.worker``; the lifecycle rules are ``imagineer.jobs``'. Services import the task
at module level and the task imports services inside its body: one import direction.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from albums.models import Album
from generation.engine.lora_files import lora_fit_error
from generation.engine.schedulers import SCHEDULERS
from generation.engine.source import ModelSourceError, model_base
from generation.model_config import model_source
from generation.models import (
    GUIDANCE_MAX,
    GUIDANCE_MIN,
    STEPS_MAX,
    STEPS_MIN,
    BatchGenerationRun,
    GenerationJob,
    Lora,
)
from generation.services.prompt_loras import (
    InlineLora,
    inline_loras_fit,
    inline_loras_record,
    prompt_loras_resolve,
    prompt_syntax_validate,
)
from generation.services.templates import lora_weight_parse, size_validate
from generation.tasks import chunk_generate_task
from imagineer.errors import ApplicationError, field_error
from imagineer.jobs import cancel, enqueue_on_commit
from imagineer.limits import limit_check

SEED_MAX = 2**32 - 1
JobStatus = GenerationJob.Status
RunStatus = BatchGenerationRun.Status


def seed_random() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def lora_stack_snapshot(
    loras: Sequence[tuple[Lora, Decimal]], *, field: str = "loras", inline: Sequence[InlineLora] = ()
) -> list[dict[str, Any]]:
    """Validate a LoRA stack against the configured model and freeze it as the job's recipe.

    ``inline`` are the prompt's resolved ``<lora:...>`` tags, merged in by :func:`lora_stack_merge`.
    """
    snapshot, seen = [], set()
    base = configured_model_base()
    for lora, raw_weight in loras:
        weight = lora_weight_parse(raw_weight, field=field)
        if lora.pk in seen:
            raise field_error(field, f"LoRA {lora.name!r} is in the stack twice; list each LoRA once.")
        seen.add(lora.pk)
        problem = lora_fit_error(lora_name=lora.name, lora_base=lora.base, model_base=base)
        if problem:
            raise field_error(field, problem, code="lora_unfit")
        snapshot.append({"id": lora.pk, "name": lora.name, "sha256": lora.sha256, "weight": str(weight)})
    return lora_stack_merge(snapshot, inline, model_base=base)


def configured_model_base() -> str:
    try:
        return model_base(model_source())
    except ModelSourceError as exc:
        raise ApplicationError(str(exc)) from None


def lora_stack_merge(
    snapshot: list[dict[str, Any]], inline: Sequence[InlineLora], *, model_base: str
) -> list[dict[str, Any]]:
    """The stack with the prompt's LoRA tags merged in, marked ``"source": "prompt"``.

    A tag naming a LoRA already in the stack sets its weight (the prompt is the more specific
    place, and a recipe's prompt keeps its tags, so generating again gives the same stack);
    the other tagged LoRAs follow the stack in prompt order.
    """
    inline_loras_fit(inline, model_base=model_base)
    merged = [dict(entry) for entry in snapshot]
    for item in inline:
        entry = {
            "id": item.lora.pk,
            "name": item.lora.name,
            "sha256": item.lora.sha256,
            "weight": str(item.weight),
            "source": "prompt",
        }
        position = next((index for index, old in enumerate(merged) if old["sha256"] == item.lora.sha256), None)
        if position is None:
            merged.append(entry)
        else:
            merged[position] = entry
    return merged


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
    prompt_syntax_validate(negative_prompt or "", field="negative_prompt", tags_allowed=False)


def seed_validate(seed: Any, *, field: str = "seed") -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX:
        raise field_error(field, f"Seed must be a whole number from 0 to {SEED_MAX}; got {seed!r}.")
    return seed


def chunks_enqueue(job_ids: Sequence[int], *, chunk_size: int | None = None) -> list[str]:
    """Split jobs into gpu tasks, in row order; each job records its task id so a redelivery can reclaim it."""
    size = chunk_size or settings.IMAGINEER_CHUNK_SIZE
    task_ids = []
    for start in range(0, len(job_ids), size):
        chunk = list(job_ids[start : start + size])
        task_ids.append(
            enqueue_on_commit(chunk_generate_task, GenerationJob.objects.filter(pk__in=chunk), args=[chunk])
        )
    return task_ids


def jobs_resend(job_ids: Sequence[int]) -> None:
    """The reconciler's hook (imagineer.jobs registry): send queued jobs whose message was lost again."""
    queued = GenerationJob.objects.filter(pk__in=job_ids, status=GenerationJob.Status.QUEUED).order_by(
        "row_index", "pk"
    )
    chunks_enqueue(list(queued.values_list("pk", flat=True)))


def runs_resend(run_ids: Sequence[int]) -> None:
    """A run has no message of its own: send its queued jobs again."""
    for run_id in run_ids:
        jobs_resend(
            list(GenerationJob.objects.filter(run_id=run_id, status=JobStatus.QUEUED).values_list("pk", flat=True))
        )


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
    guide: dict | None = None,
    created_by: User | None = None,
) -> GenerationJob:
    """One image: validate everything, store the job (seed chosen now), run it on a gpu worker.

    ``guide``: a layout guide as a recipe recorded it (regenerating a guided image).
    """
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
    inline = prompt_loras_resolve([("prompt", prompt)])
    parts: dict[str, Any] = {"prompt": prompt.strip()}
    if inline:
        parts["lora_tags"] = inline_loras_record(inline)
    job = GenerationJob.objects.create(
        prompt=prompt.strip(),
        negative_prompt=(negative_prompt or "").strip(),
        prompt_parts=parts,
        width=width,
        height=height,
        steps=steps,
        progress_total=steps,
        guidance_scale=float(guidance_scale),
        seed=seed,
        scheduler=scheduler,
        lora_stack=lora_stack_snapshot(loras, inline=inline),
        album=album,
        guide=guide or {},
        created_by=created_by,
    )
    chunks_enqueue([job.pk])
    job.refresh_from_db(fields=["task_id"])
    return job


@transaction.atomic
def job_cancel(*, job: GenerationJob) -> GenerationJob:
    """Queued: cancelled now (its message revoked). Running: cancelling until the worker stops. Finished: refused."""
    result = cancel(GenerationJob.objects.filter(pk=job.pk))
    job.refresh_from_db()
    if not result.cancelled and not result.cancelling:
        if job.status == GenerationJob.Status.CANCELLING:
            raise ApplicationError(f"Job {job.pk} is already being cancelled; it stops at its next step.")
        raise ApplicationError(f"Job {job.pk} has already finished ({job.get_status_display().lower()}).")
    if job.run_id:
        run_refresh(run_id=job.run_id)
    return job


def run_refresh(*, run_id: int) -> BatchGenerationRun:
    """Recompute a run's counts from its jobs and settle its status once no job is left to run.

    Idempotent, safe from any worker at any time: the workers' per-image increments are
    replaced by the truth here.
    """
    with transaction.atomic():
        run = BatchGenerationRun.objects.select_for_update().get(pk=run_id)
        counts = dict(run.jobs.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        succeeded = counts.get(JobStatus.SUCCEEDED, 0)
        failed = counts.get(JobStatus.FAILED, 0)
        cancelled = counts.get(JobStatus.CANCELLED, 0)
        unfinished = sum(counts.get(status, 0) for status in GenerationJob.IN_PROGRESS | {JobStatus.QUEUED})
        steps_done = run.jobs.filter(status=JobStatus.SUCCEEDED).aggregate(n=Sum("steps"))["n"] or 0
        run.completed_items, run.failed_items, run.progress_done = succeeded, failed, steps_done
        fields = ["completed_items", "failed_items", "progress_done"]
        if unfinished == 0 and not run.is_finished:
            if run.cancel_requested:
                run.status = RunStatus.CANCELLED
            elif failed == 0 and cancelled == 0:
                run.status = RunStatus.COMPLETED
            elif succeeded:
                run.status = RunStatus.COMPLETED_WITH_ERRORS
            else:
                run.status = RunStatus.FAILED
                run.error = run.jobs.exclude(error="").values_list("error", flat=True).first() or ""
                fields.append("error")
            run.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
        return run
