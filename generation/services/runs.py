"""Batch runs: a template + a theme -> an album filled image by image, in row order.

``run_start`` creates the run, its album (now, so images appear as they finish) and one job
per CSV row with its constructed prompt and seed, then splits the jobs into gpu tasks so that
several GPU workers can share one run. Counts and the final status are recomputed from the
jobs by ``run_refresh`` (idempotent, safe to call from any worker at any time).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from albums.models import Album, AlbumImage
from albums.services.curation import album_create
from albums.services.files import media_path
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob, Lora
from generation.services.decks import album_cancelled_mark, rows_select, run_jobs_build, slots_create
from generation.services.jobs import (
    chunks_enqueue,
    generation_params_validate,
    lora_stack_snapshot,
    run_refresh,
    seed_random,
    seed_validate,
)
from generation.services.templates import (
    lora_weight_parse,
    template_validate,
)
from generation.types import RunOverrides
from imagineer.errors import ApplicationError, field_error
from imagineer.jobs import cancel
from imagineer.limits import limit_check

SEED_POLICIES = ("random", "fixed", "increment")
OVERRIDE_KEYS = {
    "steps",
    "guidance_scale",
    "width",
    "height",
    "negative_prompt",
    "style_suffix",
    "seed",
    "seed_policy",
    "lora_weights",
}
Status = BatchGenerationRun.Status
JobStatus = GenerationJob.Status


def _template_snapshot(template: BatchTemplate, stack: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": template.pk,
        "name": template.name,
        "slug": template.slug,
        "columns": list(template.columns),
        "base_prompt": template.base_prompt,
        "prompt_template": template.prompt_template,
        "style_suffix": template.style_suffix,
        "negative_prompt": template.negative_prompt,
        "width": template.width,
        "height": template.height,
        "steps": template.steps,
        "guidance_scale": template.guidance_scale,
        "loras": stack,
        "row_count": len(template.csv_data),
    }


def _seeds(count: int, *, policy: str, base: int | None) -> list[int]:
    if policy == "random":
        return [seed_random() for _ in range(count)]
    if base is None:
        base = seed_random()
    if policy == "fixed":
        return [base] * count
    return [(base + index) % 2**32 for index in range(count)]


def _overrides_clean(template: BatchTemplate, overrides: dict[str, Any]) -> RunOverrides:
    unknown = sorted(set(overrides) - OVERRIDE_KEYS)
    if unknown:
        raise field_error(
            "overrides", f"Unknown override {', '.join(unknown)}; known: {', '.join(sorted(OVERRIDE_KEYS))}."
        )
    seed = overrides.get("seed")
    if seed is not None:
        seed = seed_validate(seed)
    policy = overrides.get("seed_policy") or ("increment" if seed is not None else "random")
    if policy not in SEED_POLICIES:
        raise field_error("seed_policy", f"Seed policy {policy!r} is not one of {', '.join(SEED_POLICIES)}.")
    weights = overrides.get("lora_weights") or {}
    if not isinstance(weights, dict):
        raise field_error("lora_weights", "LoRA weights must be a mapping of LoRA name to weight.")
    cleaned: RunOverrides = {
        "steps": overrides.get("steps", template.steps),
        "guidance_scale": float(overrides.get("guidance_scale", template.guidance_scale)),
        "width": overrides.get("width", template.width),
        "height": overrides.get("height", template.height),
        "negative_prompt": overrides.get("negative_prompt", template.negative_prompt) or "",
        "seed": seed,
        "seed_policy": policy,
        "lora_weights": {name: str(lora_weight_parse(value, field="lora_weights")) for name, value in weights.items()},
    }
    if "style_suffix" in overrides:
        # Recorded only when given: a run without it uses its template snapshot's suffix.
        cleaned["style_suffix"] = _style_suffix_clean(overrides["style_suffix"])
    return cleaned


def _style_suffix_clean(value: Any) -> str:
    if not isinstance(value, str):
        raise field_error("style_suffix", "The style suffix must be text.")
    value = value.strip()
    limit = settings.IMAGINEER_MAX_PROMPT_CHARS
    if len(value) > limit:
        raise field_error("style_suffix", f"The style suffix is {len(value):,} characters; the limit is {limit:,}.")
    return value


@transaction.atomic
def run_start(
    *,
    template: BatchTemplate,
    theme: str,
    album_name: str | None = None,
    overrides: dict | None = None,
    rows: list[int] | None = None,
    first: int | None = None,
    sample: int | None = None,
    created_by: User | None = None,
) -> BatchGenerationRun:
    """Start a run: the album (a deck, one slot per row) now, the chosen rows' jobs on the gpu queue.

    ``rows`` (indices from 0), ``first`` or ``sample`` make only some rows (try first);
    ``run_complete`` makes the rest later into the same deck.
    """
    chosen = rows_select(total=len(template.csv_data), rows=rows, first=first, sample=sample)
    limit_check(user=created_by, runs=1, jobs=len(chosen))
    theme = (theme or "").strip()
    if len(theme) > 500:
        raise field_error("theme", f"The theme is {len(theme)} characters; the limit is 500.")
    params = _overrides_clean(template, dict(overrides or {}))
    generation_params_validate(
        prompt="-",
        negative_prompt=params["negative_prompt"],
        width=params["width"],
        height=params["height"],
        steps=params["steps"],
        guidance_scale=params["guidance_scale"],
        scheduler=settings.IMAGINEER_SCHEDULER,
    )
    template_validate(
        columns=template.columns,
        rows=template.csv_data,
        base_prompt=template.base_prompt,
        prompt_template=template.prompt_template,
        style_suffix=params.get("style_suffix", template.style_suffix),
        theme=theme,
    )
    entries = list(template.lora_stack.select_related("lora"))
    names = {entry.lora.name for entry in entries}
    missing = sorted(set(params["lora_weights"]) - names)
    if missing:
        raise field_error(
            "lora_weights",
            f"LoRA {missing[0]!r} is not in this template's stack ({', '.join(sorted(names)) or 'empty'}).",
        )
    stack: list[tuple[Lora, Any]] = [
        (entry.lora, params["lora_weights"].get(entry.lora.name, entry.weight)) for entry in entries
    ]
    lora_snapshot = lora_stack_snapshot(stack, field="lora_weights")

    name = (album_name or "").strip() or f"{template.name}: {theme or 'untitled'}"[:200]
    album = album_create(
        name=name[:200],
        source_type=Album.SourceType.BATCH_GENERATION,
        description=f"Generated from template {template.name!r} with theme {theme!r}.",
        created_by=created_by,
    )
    run = BatchGenerationRun.objects.create(
        template=template,
        template_snapshot=_template_snapshot(template, lora_snapshot),
        theme=theme,
        overrides=dict(params),
        album=album,
        total_items=len(chosen),
        progress_total=len(chosen) * params["steps"],
        created_by=created_by,
    )
    slots = slots_create(album=album, run=run, template=template)
    seeds = _seeds(len(slots), policy=params["seed_policy"], base=params["seed"])
    if params["seed"] is None and params["seed_policy"] != "random":
        # Recorded so that completing the deck later continues the same seeds.
        run.overrides["seed"] = seeds[0]
        run.save(update_fields=["overrides"])
    jobs = run_jobs_build(
        run=run,
        slots=[slots[index] for index in chosen],
        seeds={index: seeds[index] for index in chosen},
        created_by=created_by,
    )
    created = GenerationJob.objects.bulk_create(jobs)
    chunks_enqueue([job.pk for job in created])
    return run


@transaction.atomic
def run_cancel(*, run: BatchGenerationRun) -> BatchGenerationRun:
    """Queued items are dropped now (their messages revoked); running ones stop at their next
    progress check; images stay. The run is ``cancelling`` until its running items stop (a dead
    worker's items are settled by the reconciler), then ``cancelled``. Cancelling twice is fine."""
    run = BatchGenerationRun.objects.select_for_update().get(pk=run.pk)
    if run.is_finished:
        raise ApplicationError(f"Run {run.pk} has already finished ({run.get_status_display().lower()}).")
    cancel(run.jobs.all())
    run.cancel_requested, run.status = True, Status.CANCELLING
    run.save(update_fields=["cancel_requested", "status"])
    album_cancelled_mark(album_id=run.album_id, cancelled=True)
    return run_refresh(run_id=run.pk)


def _image_missing(job: GenerationJob) -> bool:
    if job.result_image is None:
        return True
    try:
        return not media_path(job.result_image.file.name).is_file()
    except ValueError:
        return True


def _live(job: GenerationJob, cutoff: datetime) -> bool:
    """Held by a worker whose heartbeat is fresh (it is making the image right now)."""
    return job.status in GenerationJob.IN_PROGRESS and job.heartbeat_at is not None and job.heartbeat_at >= cutoff


@transaction.atomic
def run_retry(*, run: BatchGenerationRun) -> BatchGenerationRun:
    """Make every item that has no image and is not being made on a live worker again.

    Failed, cancelled and missing-file items go back to the queue, and so do items whose
    worker stopped beating. Items a live worker is still making after a cancel keep going:
    their cancel is withdrawn (a retry right after a cancel must not lose the chunk in
    flight). Finished images are not touched. Allowed in any state with something to retry.
    """
    limit_check(user=run.created_by, runs=1, jobs=run.total_items - run.completed_items)
    run = BatchGenerationRun.objects.select_for_update().get(pk=run.pk)
    cutoff = timezone.now() - timedelta(seconds=settings.IMAGINEER_JOB_STALE_SECONDS)
    items = list(run.jobs.select_for_update(of=("self",)).select_related("result_image").order_by("row_index"))
    resume = [job for job in items if _live(job, cutoff) and job.cancel_requested]
    targets = [
        job
        for job in items
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED)
        or (job.status == JobStatus.SUCCEEDED and _image_missing(job))
        or (job.status in GenerationJob.IN_PROGRESS and not _live(job, cutoff))
        or (job.status == JobStatus.QUEUED and job.cancel_requested)
    ]
    if not targets and not resume:
        raise ApplicationError(
            f"Run {run.pk} has nothing to retry: every item has its image or is being made on a live worker."
        )
    for job in targets:
        if job.result_image is not None:
            # The row points at a file that is gone: drop it so the album shows the new one.
            AlbumImage.objects.filter(image=job.result_image).delete()
            job.result_image.delete()
    GenerationJob.objects.filter(pk__in=[job.pk for job in resume], status__in=GenerationJob.IN_PROGRESS).update(
        status=JobStatus.RUNNING, cancel_requested=False
    )
    GenerationJob.objects.filter(pk__in=[job.pk for job in targets]).update(
        status=JobStatus.QUEUED,
        cancel_requested=False,
        error="",
        progress_done=0,
        attempts=0,
        worker="",
        heartbeat_at=None,
        started_at=None,
        finished_at=None,
        result_image=None,
    )
    run.status, run.cancel_requested, run.finished_at, run.error = Status.RUNNING, False, None, ""
    run.save(update_fields=["status", "cancel_requested", "finished_at", "error"])
    if targets:
        chunks_enqueue([job.pk for job in targets])
    album_cancelled_mark(album_id=run.album_id, cancelled=False)
    return run_refresh(run_id=run.pk)
