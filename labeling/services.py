"""Labeling workflows: label one image now, enqueue one, label an album on the labeling queue.

Labeling an image runs the slow labeler outside any transaction and then replaces that
source's labels for that prompt type in one short transaction. Album jobs fan out one task
per image, so the labeling worker's concurrency (``-c N``) is the number of containers that
run at once; see :class:`labeling.models.LabelingJob` for the status transitions.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from albums.models import Album, AlbumImage, Image
from albums.services.files import media_path
from imagineer import jobs
from imagineer.errors import ApplicationError, field_error
from imagineer.jobs import enqueue_on_commit
from imagineer.limits import limit_check
from labeling.backends import (
    AI_SOURCES,
    BACKENDS,
    PROMPT_TYPES,
    LabelError,
    LabelResult,
    TransientLabelError,
    labeler_get,
)
from labeling.data_models import LabelImageOutcome
from labeling.models import Label, LabelingJob, LabelingJobError, LabelingJobItem
from labeling.tasks import label_image_task, labeling_job_fan_out_task, labeling_job_item_task

logger = logging.getLogger(__name__)

# Per-image failures kept on the job row; the items keep every one.
MAX_JOB_ERRORS = 200


def prompt_type_validate(prompt_type: str) -> str:
    if prompt_type not in PROMPT_TYPES:
        raise field_error(
            "prompt_type", f"Unknown prompt type {prompt_type!r}; choose one of {', '.join(PROMPT_TYPES)}."
        )
    return prompt_type


def backend_validate(backend: str | None) -> str | None:
    if backend is not None and backend not in BACKENDS:
        raise field_error("backend", f"Unknown labeler {backend!r}; choose one of {', '.join(BACKENDS)}.")
    return backend


def image_file_path(image: Image) -> Path:
    try:
        path = media_path(image.file.name)
    except ValueError:
        raise ApplicationError(f"Image {image.pk} points outside the media folder.", code="file_missing") from None
    if not path.is_file():
        raise ApplicationError(f"Image {image.pk}'s file {image.file.name} is missing.", code="file_missing")
    return path


def image_is_labelled(*, image: Image, prompt_type: str) -> bool:
    """Has an AI labeler already labelled this image with this prompt type?"""
    return Label.objects.filter(image=image, prompt_type=prompt_type, source__in=AI_SOURCES).exists()


@transaction.atomic
def labels_store(*, image: Image, result: LabelResult, created_by: User | None = None) -> list[Label]:
    """Replace this source's labels of this prompt type with ``result``; update the NSFW rating."""
    Label.objects.filter(image=image, source=result.source, prompt_type=result.prompt_type).delete()
    common = {"image": image, "source": result.source, "prompt_type": result.prompt_type, "created_by": created_by}
    rows = [Label(label_type=Label.LabelType.CAPTION, text=result.caption, source_model=result.source_model, **common)]
    rows += [
        Label(
            label_type=Label.LabelType.TAG,
            text=tag,
            source_model=result.tag_models.get(tag, result.source_model)[:120],
            **common,
        )
        for tag in result.tags
    ]
    for row in rows:
        row.source_model = row.source_model[:120]
    labels = Label.objects.bulk_create(rows)
    if result.nsfw_rating:
        image.nsfw_rating = result.nsfw_rating
        image.is_nsfw = result.nsfw_rating in Image.NSFW_RATINGS_BLURRED
        image.save(update_fields=["nsfw_rating", "is_nsfw", "updated_at"])
    return labels


def _image_label(*, image: Image, prompt_type: str, backend: str | None, created_by: User | None) -> LabelResult:
    result = labeler_get(backend).label(image_file_path(image), prompt_type)
    labels_store(image=image, result=result, created_by=created_by)
    return result


def image_label(
    *, image: Image, prompt_type: str = "default", backend: str | None = None, user: User | None = None
) -> LabelResult:
    """Label one image now (synchronously)."""
    prompt_type_validate(prompt_type)
    backend_validate(backend)
    return _image_label(image=image, prompt_type=prompt_type, backend=backend, created_by=user)


def image_label_enqueue(
    *,
    image: Image,
    prompt_type: str = "default",
    force: bool = False,
    user: User | None = None,
    backend: str | None = None,
) -> str:
    """Queue one image for labeling on the labeling queue; returns the Celery task id.

    Without ``force`` an image that an AI labeler already labelled with this prompt type is
    left as it is (the task reports ``skipped``).
    """
    prompt_type_validate(prompt_type)
    backend_validate(backend)
    image_file_path(image)
    task_id = str(uuid.uuid4())
    kwargs = {
        "image_id": image.pk,
        "prompt_type": prompt_type,
        "backend": backend,
        "force": force,
        "user_id": user.pk if user is not None else None,
    }
    transaction.on_commit(lambda: label_image_task.apply_async(kwargs=kwargs, task_id=task_id))
    return task_id


def image_label_run(
    *, image_id: int, prompt_type: str, backend: str | None, force: bool, user_id: int | None
) -> LabelImageOutcome:
    """The ``label_image_task``'s work: label unless already labelled (and not forced)."""
    image = Image.objects.filter(pk=image_id).first()
    if image is None:
        return {"image_id": image_id, "status": "missing"}
    if not force and image_is_labelled(image=image, prompt_type=prompt_type):
        return {"image_id": image_id, "status": "skipped"}
    user = User.objects.filter(pk=user_id).first() if user_id else None
    result = _image_label(image=image, prompt_type=prompt_type, backend=backend, created_by=user)
    return {"image_id": image_id, "status": "done", **result.as_dict()}


@transaction.atomic
def album_label_start(
    *,
    album: Album,
    prompt_type: str = "default",
    force: bool = False,
    backend: str | None = None,
    user: User | None = None,
    enqueue: bool = True,
) -> LabelingJob:
    """Create a LabelingJob for the album and queue it; one active job per album.

    ``enqueue=False`` leaves the job for the caller to run in-process (``manage.py label_album``).
    """
    limit_check(user=user, labeling=1)
    prompt_type_validate(prompt_type)
    backend_validate(backend)
    try:
        with transaction.atomic():
            job = LabelingJob.objects.create(
                album=album,
                prompt_type=prompt_type,
                force=force,
                backend=backend or settings.IMAGINEER_LABELER,
                progress_total=AlbumImage.objects.filter(album=album).count(),
                created_by=user,
            )
    except IntegrityError:
        active = LabelingJob.objects.filter(album=album).exclude(status__in=LabelingJob.TERMINAL).first()
        raise ApplicationError(
            f"Album {album.name!r} is already being labelled (job {active.pk if active else '?'}); "
            "wait for it or cancel it first.",
            code="conflict",
        ) from None
    if enqueue:
        job.task_id = enqueue_on_commit(labeling_job_fan_out_task, LabelingJob.objects.filter(pk=job.pk), args=[job.pk])
    return job


def labeling_job_cancel(*, job: LabelingJob) -> LabelingJob:
    """Cancel a queued or running job: images not yet started are cancelled (their messages
    revoked); an image being labelled finishes, and the job is cancelled when the last does."""
    with transaction.atomic():
        locked = LabelingJob.objects.select_for_update().get(pk=job.pk)
        if locked.status in (LabelingJob.Status.CANCELLING, LabelingJob.Status.CANCELLED):
            return locked
        if locked.is_finished:
            raise ApplicationError(f"Labeling job {job.pk} has already finished ({locked.status}).", code="finished")
        items = jobs.cancel(LabelingJobItem.objects.filter(job=locked))
        jobs.cancel(LabelingJob.objects.filter(pk=locked.pk))
        locked.refresh_from_db()
        locked.skipped += len(items.cancelled)
        _job_finish_if_complete(locked)
        locked.save(update_fields=["status", "skipped", "progress_done", "finished_at"])
    return locked


def labeling_job_fan_out(*, job_id: int, task_id: str | None = None, enqueue: bool = True) -> list[int]:
    """Claim the job and create one item per album image; queue each on commit (``enqueue=False``:
    return their ids for the caller to label in-process). ``task_id`` is the fan-out task's.

    A second delivery finds the job claimed and does nothing.
    """
    with transaction.atomic():
        if not jobs.claim_one(LabelingJob, job_id, task_id=task_id or f"local-{uuid.uuid4()}"):
            return []
        job = LabelingJob.objects.select_for_update().get(pk=job_id)
        image_ids = list(
            AlbumImage.objects.filter(album_id=job.album_id)
            .order_by("position", "id")
            .values_list("image_id", flat=True)
        )
        labelled: set[int] = set()
        if not job.force:
            labelled = set(
                Label.objects.filter(image_id__in=image_ids, prompt_type=job.prompt_type, source__in=AI_SOURCES)
                .values_list("image_id", flat=True)
                .distinct()
            )
        attempts = settings.IMAGINEER_LABEL_MAX_RETRIES + 1
        LabelingJobItem.objects.bulk_create(
            [
                LabelingJobItem(
                    job=job,
                    image_id=image_id,
                    status=LabelingJobItem.Status.SKIPPED if image_id in labelled else LabelingJobItem.Status.QUEUED,
                    error="already labelled" if image_id in labelled else "",
                    max_attempts=attempts,
                )
                for image_id in image_ids
            ],
            ignore_conflicts=True,
        )
        items = LabelingJobItem.objects.filter(job=job)
        job.progress_total = items.count()
        job.skipped = items.filter(status=LabelingJobItem.Status.SKIPPED).count()
        _job_finish_if_complete(job)
        job.save(update_fields=["status", "progress_total", "progress_done", "skipped", "finished_at"])
        queued = list(items.filter(status=LabelingJobItem.Status.QUEUED).values_list("pk", flat=True))
        if enqueue:
            for item_id in queued:
                enqueue_on_commit(labeling_job_item_task, LabelingJobItem.objects.filter(pk=item_id), args=[item_id])
    return queued


def labeling_items_resend(item_ids: Sequence[int]) -> None:
    """The reconciler's hook (imagineer.jobs registry): send queued items whose message was lost again."""
    queued = LabelingJobItem.objects.filter(pk__in=item_ids, status=LabelingJobItem.Status.QUEUED)
    for item_id in queued.values_list("pk", flat=True):
        enqueue_on_commit(labeling_job_item_task, LabelingJobItem.objects.filter(pk=item_id), args=[item_id])


def labeling_jobs_resend(job_ids: Sequence[int]) -> None:
    """A queued job's message is its fan-out; a running job has none of its own: its queued items."""
    for job_id in LabelingJob.objects.filter(pk__in=job_ids, status=LabelingJob.Status.QUEUED).values_list(
        "pk", flat=True
    ):
        enqueue_on_commit(labeling_job_fan_out_task, LabelingJob.objects.filter(pk=job_id), args=[job_id])
    queued = LabelingJobItem.objects.filter(
        job_id__in=job_ids, job__status=LabelingJob.Status.RUNNING, status=LabelingJobItem.Status.QUEUED
    )
    labeling_items_resend(list(queued.values_list("pk", flat=True)))


def labeling_job_fail(*, job_id: int, error: str) -> None:
    """The fan-out itself failed: the job cannot run."""
    now = timezone.now()
    entry: LabelingJobError = {"image_id": None, "error": error[:2000], "at": now.isoformat()}
    LabelingJob.objects.filter(pk=job_id).exclude(status__in=LabelingJob.TERMINAL).update(
        status=LabelingJob.Status.FAILED, error=error[:4000], errors=[entry], finished_at=now
    )


def _job_finish_if_complete(job: LabelingJob) -> None:
    """The job's final status once every item is processed (a cancelling job: cancelled)."""
    job.progress_done = job.processed
    if job.status not in (LabelingJob.Status.RUNNING, LabelingJob.Status.CANCELLING):
        return
    if job.processed < job.progress_total:
        return
    if job.status == LabelingJob.Status.CANCELLING:
        job.status = LabelingJob.Status.CANCELLED
    elif job.failed and not job.done:
        job.status = LabelingJob.Status.FAILED
    elif job.failed:
        job.status = LabelingJob.Status.COMPLETED_WITH_ERRORS
    else:
        job.status = LabelingJob.Status.COMPLETED
    job.finished_at = timezone.now()


def _item_finish(*, item: LabelingJobItem, worker: str, status: str, error: str = "") -> None:
    """Move an item this worker holds to its final status and count it on its job, once."""
    with transaction.atomic():
        job = LabelingJob.objects.select_for_update().get(pk=item.job_id)
        moved = jobs.held(LabelingJobItem, [item.pk], worker=worker).update(
            status=status, error=error[:4000], finished_at=timezone.now(), heartbeat_at=None
        )
        if not moved:
            return
        if status == LabelingJobItem.Status.SUCCEEDED:
            job.done += 1
        elif status in (LabelingJobItem.Status.SKIPPED, LabelingJobItem.Status.CANCELLED):
            job.skipped += 1
        else:
            job.failed += 1
            entry: LabelingJobError = {
                "image_id": item.image_id,
                "error": error[:2000],
                "at": timezone.now().isoformat(),
            }
            job.errors = [*job.errors, entry][-MAX_JOB_ERRORS:]
        _job_finish_if_complete(job)
        job.save(update_fields=["done", "failed", "skipped", "errors", "status", "progress_done", "finished_at"])


def labeling_job_item_label(*, item_id: int, final_attempt: bool, task_id: str | None = None) -> str:
    """Label one image of a job. Returns the item's status.

    ``task_id`` is the item task's (a retry keeps it); the command labelling in-process passes
    one per item. A transient failure puts the item back in the queue and is re-raised for the
    task to retry, unless this is the final attempt, when it is recorded like any other
    failure; the album goes on either way.
    """
    worker = jobs.worker_name()
    task_id = task_id or f"local-{item_id}"
    claimed = jobs.claim(
        LabelingJobItem.objects.filter(pk=item_id, job__status=LabelingJob.Status.RUNNING),
        task_id=task_id,
        worker=worker,
    )
    item = LabelingJobItem.objects.select_related("job", "image", "job__created_by").filter(pk=item_id).first()
    if item is None:
        return "missing"
    if not claimed:
        return item.status
    job = item.job
    try:
        with jobs.Heartbeat(LabelingJobItem, [item.pk], worker=worker):
            _image_label(image=item.image, prompt_type=job.prompt_type, backend=job.backend, created_by=job.created_by)
    except TransientLabelError as exc:
        if not final_attempt:
            # Back in the queue until the retry (a cancel meanwhile cancels it and revokes the
            # retry); the attempt it used stays counted.
            jobs.held(LabelingJobItem, [item.pk], worker=worker).update(
                status=LabelingJobItem.Status.QUEUED, worker="", heartbeat_at=None, error=exc.message[:2000]
            )
            raise
        _item_finish(
            item=item,
            worker=worker,
            status=LabelingJobItem.Status.FAILED,
            error=f"{exc.message} (gave up after retries)",
        )
    except (LabelError, ApplicationError) as exc:
        _item_finish(item=item, worker=worker, status=LabelingJobItem.Status.FAILED, error=exc.message)
    except jobs.TRANSIENT_DB_ERRORS:
        raise  # the task wrapper retries; the image did not fail
    except Exception as exc:
        logger.exception("labeling image %s of job %s failed unexpectedly", item.image_id, job.pk)
        _item_finish(item=item, worker=worker, status=LabelingJobItem.Status.FAILED, error=f"Unexpected error: {exc}")
    else:
        _item_finish(item=item, worker=worker, status=LabelingJobItem.Status.SUCCEEDED)
    return LabelingJobItem.objects.values_list("status", flat=True).get(pk=item_id)
