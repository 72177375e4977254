from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models


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


class LabelingJob(models.Model):
    """Labeling of one album's images on the ``labeling`` queue.

    Status transitions (each a conditional update, so a redelivered task cannot repeat one):

    * ``queued`` → ``running``: the album task claims the job and fans out one task per image.
    * ``running`` → ``completed`` (every image labelled or skipped), ``completed_with_errors``
      (some images failed, the rest done) or ``failed`` (images were attempted and none
      succeeded, or the fan-out itself failed): by whichever image task finishes last.
    * ``queued`` | ``running`` → ``cancelled``: by :func:`labeling.services.labeling_job_cancel`;
      image tasks not yet started then do nothing.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    album = models.ForeignKey("albums.Album", on_delete=models.CASCADE, related_name="labeling_jobs")
    prompt_type = models.CharField(max_length=32, choices=Label.PromptType.choices, default=Label.PromptType.DEFAULT)
    force = models.BooleanField(default=False, help_text="Relabel images that already have labels.")
    backend = models.CharField(max_length=32, help_text="claude-docker, claude-cli or local")
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # LabelingJobError entries, one per image that failed.
    errors: models.JSONField[list[LabelingJobError], list[LabelingJobError]] = models.JSONField(
        default=list, blank=True
    )
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="labeling_jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["album"],
                condition=models.Q(status__in=["queued", "running"]),
                name="labeling_one_active_job_per_album",
            )
        ]

    def __str__(self) -> str:
        return f"Labeling of {self.album} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def processed(self) -> int:
        return self.done + self.failed + self.skipped


class LabelingJobItem(models.Model):
    """One image of a LabelingJob: the unit a labeling task claims.

    ``pending`` → ``running`` (claimed; a retry or a redelivery may claim it again) →
    ``done`` | ``failed``; ``skipped`` when the image was already labelled or the job was
    cancelled first. The job's counters move only when an item leaves ``running``, so each
    image is counted once however often its task is delivered.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(LabelingJob, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey("albums.Image", on_delete=models.CASCADE, related_name="labeling_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "image"], name="labeling_item_unique")]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.image_id} ({self.status})"
