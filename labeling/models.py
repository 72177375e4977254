from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models

from imagineer.models import Job


class Label(models.Model):
    """A caption or tag on an image, with what made it.

    ``source`` names the labeler (``claude-docker``, ``claude-cli``, ``local``, ``alt`` for a
    scraped image's alt text, ``manual``); re-labeling replaces the labels of the same source.
    """

    class LabelType(models.TextChoices):
        CAPTION = "caption", "Caption"
        TAG = "tag", "Tag"

    class PromptType(models.TextChoices):
        DEFAULT = "default", "Default"
        SD_TRAINING = "sd_training", "SD training caption"

    image = models.ForeignKey("albums.Image", on_delete=models.CASCADE, related_name="labels")
    label_type = models.CharField(max_length=16, choices=LabelType.choices)
    text = models.TextField()
    source = models.CharField(max_length=32, default="manual", db_index=True)
    source_model = models.CharField(max_length=120, blank=True)
    prompt_type = models.CharField(max_length=32, choices=PromptType.choices, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image", "label_type", "id"]
        indexes = [models.Index(fields=["image", "label_type"]), models.Index(fields=["label_type", "text"])]
        permissions = [("label", "Can run AI labeling on images and albums")]

    def __str__(self) -> str:
        return f"{self.label_type}: {self.text[:60]}"


class LabelingJobError(TypedDict):
    """One entry of ``LabelingJob.errors``: the image that failed (None: the job itself), why, when."""

    image_id: int | None
    error: str
    at: str


class LabelingJob(Job):
    """Labeling of one album's images on the ``labeling`` queue: the parent of one
    :class:`LabelingJobItem` per image, which are the units workers claim.

    A background job (imagineer.models.Job documents the transitions); its words:

    * ``queued`` -> ``running``: the fan-out task claims the job and queues one task per image.
    * ``running`` -> ``completed`` (every image labelled or skipped), ``completed_with_errors``
      (some images failed, the rest done) or ``failed`` (images were attempted and none
      succeeded, or the fan-out itself failed): by whichever item finishes last.
    * ``queued`` -> ``cancelled``; ``running`` -> ``cancelling`` -> ``cancelled``: by
      :func:`labeling.services.labeling_job_cancel`. Images not yet started are cancelled (their
      messages revoked); an image being labelled finishes, and the last one ends the job.

    No worker holds the job itself once it has fanned out (its items carry the heartbeats), so
    ``IN_PROGRESS`` is empty: no stale rule applies to it. progress_done / progress_total:
    images processed (labelled, failed or skipped) out of the album's.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    STATUS_SUCCEEDED = Status.COMPLETED
    TERMINAL = frozenset({Status.COMPLETED, Status.COMPLETED_WITH_ERRORS, Status.FAILED, Status.CANCELLED})
    IN_PROGRESS: frozenset[str] = frozenset()

    album = models.ForeignKey("albums.Album", on_delete=models.CASCADE, related_name="labeling_jobs")
    prompt_type = models.CharField(max_length=32, choices=Label.PromptType.choices, default=Label.PromptType.DEFAULT)
    force = models.BooleanField(default=False, help_text="Relabel images that already have labels.")
    backend = models.CharField(max_length=32, help_text="claude-docker, claude-cli or local")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Already labelled, or cancelled before they started.
    skipped = models.PositiveIntegerField(default=0)
    # LabelingJobError entries, one per image that failed.
    errors: models.JSONField[list[LabelingJobError], list[LabelingJobError]] = models.JSONField(
        default=list, blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="labeling_jobs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["album"],
                condition=models.Q(status__in=["queued", "running", "cancelling"]),
                name="labeling_one_active_job_per_album",
            )
        ]

    def __str__(self) -> str:
        return f"Labeling of {self.album} ({self.status})"

    @property
    def is_active(self) -> bool:
        return not self.is_finished

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped


class LabelingJobItem(Job):
    """One image of a LabelingJob: the unit a labeling task claims (a background job).

    ``queued`` -> ``running`` (claimed; a retry or a redelivery of its message takes it again)
    -> ``succeeded`` | ``failed``; ``skipped`` when the image was already labelled; cancelled
    with its job. The job's counters move only when an item leaves ``running``, so each image
    is counted once however often its task is delivered. ``max_attempts`` is the labeling
    retry limit plus one: a transient failure (rate limit, timeout) is retried under the same
    task id, possibly on another worker process, which the claim counts as an attempt.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.SKIPPED})

    job = models.ForeignKey(LabelingJob, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey("albums.Image", on_delete=models.CASCADE, related_name="labeling_items")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED)

    class Meta(Job.Meta):
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "image"], name="labeling_item_unique")]
        indexes = [*Job.Meta.indexes, models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.image_id} ({self.status})"
