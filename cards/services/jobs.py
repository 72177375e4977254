"""Finishing jobs: start, cancel, send again. The work itself is in ``cards.worker``.

A job that needs the pipeline goes to the gpu queue first (``gpu_run_task``: the back generated
from the design's prompt when the deck has none yet, and with ``hires`` an img2img pass over every
pick); that task hands the job on to the default queue (``finishing_run_task``), which renders the
cards and writes the exports. Any other job goes straight to the default queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from albums.models import Album
from cards.models import (
    HIRES_DENOISE_MAX,
    HIRES_DENOISE_MIN,
    HIRES_SCALE_MAX,
    HIRES_SCALE_MIN,
    CardDesign,
    FinishingJob,
)
from cards.services.designs import design_fingerprint, design_update
from cards.services.finishing import export_formats_check
from cards.tasks import finishing_run_task, gpu_run_task
from imagineer import jobs
from imagineer.errors import ApplicationError, field_error

STAGE_BACK = "back"
STAGE_HIRES = "hires"
STAGE_FINISH = "finish"
GPU_STAGES = (STAGE_BACK, STAGE_HIRES)


def back_wanted(design: CardDesign) -> bool:
    """The design's back is generated from its prompt (an uploaded back image wins)."""
    return bool(design.back_prompt.strip()) and not design.back_image


def _enqueue(job: FinishingJob) -> None:
    rows = FinishingJob.objects.filter(pk=job.pk)
    task = gpu_run_task if job.stage in GPU_STAGES else finishing_run_task
    job.task_id = jobs.enqueue_on_commit(task, rows, args=[job.pk])


def finishing_check(
    *, album: Album, design: CardDesign, formats: Sequence[str], hires: bool, hires_scale: float, hires_denoise: float
) -> list[str]:
    """Refuse what cannot be finished, naming the field; returns the formats in order, without repeats."""
    run = album.generation_runs.order_by("created_at", "id").first()
    if run is not None and run.template_id is not None and run.template_id != design.template_id:
        raise field_error("design", f"Design {design.name!r} belongs to another template than this album's run.")
    chosen = export_formats_check(formats, design) if formats else []
    if hires:
        if not HIRES_SCALE_MIN <= hires_scale <= HIRES_SCALE_MAX:
            raise field_error("hires_scale", f"Hires scale must be between {HIRES_SCALE_MIN} and {HIRES_SCALE_MAX}.")
        if not HIRES_DENOISE_MIN <= hires_denoise <= HIRES_DENOISE_MAX:
            raise field_error(
                "hires_denoise",
                f"Hires denoising strength must be between {HIRES_DENOISE_MIN} and {HIRES_DENOISE_MAX}.",
            )
    return chosen


@transaction.atomic
def finishing_start(
    *,
    album: Album,
    design: CardDesign,
    formats: Sequence[str] = (),
    duplex: bool = True,
    force: bool = False,
    hires: bool = False,
    hires_scale: float = 2.0,
    hires_denoise: float = 0.3,
    created_by: Any = None,
) -> FinishingJob:
    """Queue finishing ``album`` in ``design`` (and the chosen exports); the message is sent on commit."""
    chosen = finishing_check(
        album=album, design=design, formats=formats, hires=hires, hires_scale=hires_scale, hires_denoise=hires_denoise
    )
    job = FinishingJob.objects.create(
        album=album,
        design=design,
        formats=chosen,
        duplex=duplex,
        force=force,
        hires=hires,
        hires_scale=hires_scale,
        hires_denoise=hires_denoise,
        stage=STAGE_BACK if back_wanted(design) else STAGE_HIRES if hires else STAGE_FINISH,
        created_by=created_by,
    )
    _enqueue(job)
    return job


@transaction.atomic
def finishing_cancel(*, job: FinishingJob) -> FinishingJob:
    """Queued: cancelled now (its message revoked); running: the worker stops at its next check."""
    if job.is_finished:
        raise ApplicationError(f"This finishing job has already {job.status}.")
    jobs.cancel(FinishingJob.objects.filter(pk=job.pk))
    job.refresh_from_db()
    return job


def finishing_resend(job_ids: Sequence[int]) -> None:
    """The reconciler's hook (imagineer.jobs registry): send queued jobs whose message was lost again."""
    for job in FinishingJob.objects.filter(pk__in=job_ids, status=FinishingJob.Status.QUEUED):
        with transaction.atomic():
            _enqueue(job)


@transaction.atomic
def finishing_hand_on(*, job_id: int, worker: str, hires: dict[str, str], back: str = "") -> bool:
    """The gpu step is done: record its outputs and queue the job again for the default queue.

    Only the worker holding the job hands it on; the attempt it used is given back (one
    attempt counts for the whole job, not once per queue).
    """
    held = jobs.held(FinishingJob, [job_id], worker=worker)
    if not held.update(stage=STAGE_FINISH, result={"hires": hires, "back": back}):
        return False
    jobs.release(FinishingJob, [job_id], worker=worker)
    job = FinishingJob.objects.get(pk=job_id)
    _enqueue(job)
    return True


def design_refinish(*, design: CardDesign, created_by: Any = None) -> list[FinishingJob]:
    """Finish again every deck that has cards in this design (they follow the design's changes).

    One job per deck, unless one is already queued or running for it.
    """
    albums = Album.objects.filter(finished_cards__design=design).distinct()
    busy = set(
        FinishingJob.objects.filter(
            design=design, status__in=[FinishingJob.STATUS_QUEUED, *FinishingJob.IN_PROGRESS]
        ).values_list("album_id", flat=True)
    )
    return [
        finishing_start(album=album, design=design, created_by=created_by) for album in albums if album.pk not in busy
    ]


@transaction.atomic
def design_change(
    *, design: CardDesign, created_by: Any = None, **fields: Any
) -> tuple[CardDesign, list[FinishingJob]]:
    """Change a design and, when what shows on a card changed, finish its decks again."""
    before = design_fingerprint(design)
    design = design_update(design=design, **fields)
    changed = design_fingerprint(design) != before or "back_prompt" in fields
    return design, design_refinish(design=design, created_by=created_by) if changed else []
