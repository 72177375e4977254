"""LoRA training runs.

A TrainingRun is a background job (imagineer.models.Job documents the transitions, claim,
heartbeat, cancel and attempt rules). Its words:

    queued -> running [-> cancelling] -> completed | failed | cancelled
    failed | cancelled -> queued          (resume: continues from the last checkpoint)

While running, ``phase`` says which part: ``preparing`` (loading the model, caching latents)
or ``training``. progress_done / progress_total: optimizer steps out of ``max_steps``.
"""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from imagineer.models import Job

RANK_MIN, RANK_MAX = 1, 128
STEPS_MIN, STEPS_MAX = 1, 100_000
RESOLUTION_MIN, RESOLUTION_MAX = 64, 1024
BATCH_SIZE_MIN, BATCH_SIZE_MAX = 1, 64
ACCUMULATION_MIN, ACCUMULATION_MAX = 1, 64
LEARNING_RATE_MIN, LEARNING_RATE_MAX = 1e-7, 1e-2
DROPOUT_MIN, DROPOUT_MAX = 0.0, 0.9
SAMPLE_PROMPTS_MAX = 8


class DatasetEntry(TypedDict):
    """One image of ``TrainingRun.dataset``: the file under MEDIA_ROOT and its caption, as prepared."""

    image_id: int
    file: str
    caption: str
    caption_source: str


class CheckpointEntry(TypedDict):
    """One entry of ``TrainingRun.checkpoints``; paths relative to MEDIA_ROOT."""

    step: int
    file: str
    samples: list[str]


class TrainingRun(Job):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Phase(models.TextChoices):
        PREPARING = "preparing", "Preparing the dataset"
        TRAINING = "training", "Training"

    class CaptionSource(models.TextChoices):
        AUTO = "auto", "Best available (SD training caption, then default caption, then prompt)"
        SD_TRAINING = "sd_training", "SD training captions only"
        DEFAULT = "default", "Default captions only"
        PROMPT = "prompt", "Generation prompts only"

    STATUS_SUCCEEDED = Status.COMPLETED
    TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
    RESUMABLE = frozenset({Status.FAILED, Status.CANCELLED})
    # Training lasts longer than the broker's visibility timeout.
    REDELIVERY_TAKES_OVER = False

    album = models.ForeignKey("albums.Album", null=True, on_delete=models.SET_NULL, related_name="training_runs")
    name = models.CharField(max_length=200, help_text="The LoRA's name in the library.")
    trigger_word = models.CharField(max_length=100, help_text="Put in front of every caption and in the LoRA entry.")
    base_model = models.CharField(max_length=500, help_text="The base model the LoRA is trained on.")
    base_model_hash = models.CharField(max_length=64, blank=True)

    learning_rate = models.FloatField(
        validators=[MinValueValidator(LEARNING_RATE_MIN), MaxValueValidator(LEARNING_RATE_MAX)]
    )
    rank = models.PositiveIntegerField(validators=[MinValueValidator(RANK_MIN), MaxValueValidator(RANK_MAX)])
    alpha = models.FloatField(validators=[MinValueValidator(0.0)])
    dropout = models.FloatField(validators=[MinValueValidator(DROPOUT_MIN), MaxValueValidator(DROPOUT_MAX)])
    max_steps = models.PositiveIntegerField(validators=[MinValueValidator(STEPS_MIN), MaxValueValidator(STEPS_MAX)])
    save_every = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    resolution = models.PositiveIntegerField(
        validators=[MinValueValidator(RESOLUTION_MIN), MaxValueValidator(RESOLUTION_MAX)]
    )
    batch_size = models.PositiveIntegerField(
        validators=[MinValueValidator(BATCH_SIZE_MIN), MaxValueValidator(BATCH_SIZE_MAX)]
    )
    gradient_accumulation = models.PositiveIntegerField(
        validators=[MinValueValidator(ACCUMULATION_MIN), MaxValueValidator(ACCUMULATION_MAX)]
    )
    seed = models.BigIntegerField()
    mixed_precision = models.BooleanField(default=True, help_text="fp16 autocast on a CUDA GPU; ignored on CPU.")
    caption_source = models.CharField(max_length=16, choices=CaptionSource.choices, default=CaptionSource.AUTO)
    sample_prompts = models.JSONField(default=list, blank=True)

    # The dataset as it was when the run was prepared.
    dataset: models.JSONField[list[DatasetEntry], list[DatasetEntry]] = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    phase = models.CharField(max_length=16, choices=Phase.choices, blank=True)
    # [[step, loss], ...] one point per optimizer step.
    loss_history: models.JSONField[list[list[float]], list[list[float]]] = models.JSONField(default=list, blank=True)
    steps_per_second = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    # Oldest first.
    checkpoints: models.JSONField[list[CheckpointEntry], list[CheckpointEntry]] = models.JSONField(
        default=list, blank=True
    )
    lora = models.ForeignKey(
        "generation.Lora", null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]
        permissions = [("train", "Can train LoRAs from albums")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rank__gte=RANK_MIN, rank__lte=RANK_MAX), name="training_rank_range"
            ),
            models.CheckConstraint(
                condition=models.Q(max_steps__gte=STEPS_MIN, max_steps__lte=STEPS_MAX), name="training_steps_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Training {self.pk}: {self.name} ({self.status})"

    @property
    def is_active(self) -> bool:
        return not self.is_finished

    @property
    def current_step(self) -> int:
        """The last optimizer step done (``progress_done``)."""
        return self.progress_done

    @property
    def status_label(self) -> str:
        """The status as pages show it: the phase while running."""
        if self.status == self.Status.RUNNING and self.phase:
            return self.get_phase_display()
        return self.get_status_display()

    @property
    def can_resume(self) -> bool:
        return self.status in self.RESUMABLE

    @property
    def progress_percent(self) -> int:
        return min(100, round(100 * self.progress_done / self.max_steps)) if self.max_steps else 0

    @property
    def last_checkpoint(self) -> CheckpointEntry | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def last_loss(self) -> float | None:
        return self.loss_history[-1][1] if self.loss_history else None

    @property
    def output_dir(self) -> str:
        """Checkpoints and samples, relative to MEDIA_ROOT."""
        return f"checkpoints/run-{self.pk}"
