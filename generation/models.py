"""Templates, LoRAs, runs and jobs.

GenerationJob and BatchGenerationRun are background jobs (imagineer.models.Job: the status
transitions, claim, heartbeat, cancel and attempt rules are documented there). Their words:

    GenerationJob:      queued -> running [-> cancelling] -> succeeded | failed | cancelled
                        progress_done / progress_total: the denoising step of the image
    BatchGenerationRun: queued -> running [-> cancelling] -> completed | completed_with_errors
                        | failed | cancelled; a run is finished when its jobs are
                        progress_done / progress_total: denoising steps over all its jobs
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from imagineer.models import Job

LORA_WEIGHT_MIN = Decimal("-2")
LORA_WEIGHT_MAX = Decimal("2")
SIZE_MIN, SIZE_MAX = 64, 2048
STEPS_MIN, STEPS_MAX = 1, 150
GUIDANCE_MIN, GUIDANCE_MAX = 0.0, 30.0


def validate_multiple_of_8(value: int) -> None:
    from django.core.exceptions import ValidationError

    if value % 8:
        raise ValidationError(f"{value} is not a multiple of 8; use {value - value % 8} or {value - value % 8 + 8}.")


size_validators: list[Callable[[Any], None]] = [
    MinValueValidator(SIZE_MIN),
    MaxValueValidator(SIZE_MAX),
    validate_multiple_of_8,
]
weight_validators = [MinValueValidator(LORA_WEIGHT_MIN), MaxValueValidator(LORA_WEIGHT_MAX)]


class Lora(models.Model):
    class Base(models.TextChoices):
        SD15 = "sd15", "SD 1.x"
        SD2 = "sd2", "SD 2.x"
        SDXL = "sdxl", "SDXL"
        UNKNOWN = "unknown", "Unknown"

    class Source(models.TextChoices):
        UPLOAD = "upload", "Upload"
        SCAN = "scan", "Scan of the LoRA folder"
        TRAINING = "training", "Training"

    name = models.CharField(max_length=200, unique=True)
    # Path relative to LORA_ROOT.
    file = models.CharField(max_length=500, unique=True)
    sha256 = models.CharField(max_length=64, unique=True)
    # AUTOMATIC1111's hash of the file (generation.engine.lora_hash); its first 12 hex digits name
    # the LoRA in a PNG's "Lora hashes" and match imported recipes to the library.
    a1111_hash = models.CharField(max_length=64, blank=True, db_index=True)
    file_size = models.PositiveBigIntegerField(default=0)
    base = models.CharField(max_length=16, choices=Base.choices, default=Base.UNKNOWN)
    rank = models.PositiveIntegerField(null=True, blank=True)
    alpha = models.FloatField(null=True, blank=True)
    trigger_words = models.CharField(max_length=500, blank=True)
    default_weight = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("1.00"), validators=weight_validators
    )
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOAD)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LoRA"

    def __str__(self) -> str:
        return self.name

    @property
    def trigger_words_list(self) -> list[str]:
        return [word.strip() for word in self.trigger_words.split(",") if word.strip()]


class BatchTemplate(models.Model):
    """A reusable recipe: CSV rows, a prompt template with {column} placeholders, style, LoRAs.

    ``columns`` keeps the CSV header order (PostgreSQL's jsonb does not keep key order).
    Validation lives in ``generation.services.templates`` (template_save, the admin form).
    """

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    columns = models.JSONField(default=list, blank=True)
    csv_data = models.JSONField(default=list, blank=True, help_text="The CSV rows, a list of {column: value}.")
    base_prompt = models.TextField(blank=True)
    prompt_template = models.TextField(help_text="Row text with {column} placeholders; {{ and }} are literal braces.")
    style_suffix = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    example_theme = models.CharField(max_length=300, blank=True)
    # How a row names its card ("{value} of {suit}"); empty: the row's first column.
    title_template = models.CharField(
        max_length=300, blank=True, help_text="A card's title from its row, with {column} placeholders."
    )
    width = models.PositiveIntegerField(default=512, validators=size_validators)
    height = models.PositiveIntegerField(default=512, validators=size_validators)
    steps = models.PositiveIntegerField(
        default=25, validators=[MinValueValidator(STEPS_MIN), MaxValueValidator(STEPS_MAX)]
    )
    guidance_scale = models.FloatField(
        default=8.0, validators=[MinValueValidator(GUIDANCE_MIN), MaxValueValidator(GUIDANCE_MAX)]
    )
    loras = models.ManyToManyField(Lora, through="BatchTemplateLora", related_name="templates", blank=True)
    is_builtin = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_templates"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(width__gte=SIZE_MIN, width__lte=SIZE_MAX), name="template_width_range"
            ),
            models.CheckConstraint(
                condition=models.Q(height__gte=SIZE_MIN, height__lte=SIZE_MAX), name="template_height_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def row_count(self) -> int:
        return len(self.csv_data)


class BatchTemplateLora(models.Model):
    """One entry of a template's ordered LoRA stack."""

    template = models.ForeignKey(BatchTemplate, on_delete=models.CASCADE, related_name="lora_stack")
    lora = models.ForeignKey(Lora, on_delete=models.PROTECT, related_name="template_entries")
    weight = models.DecimalField(max_digits=4, decimal_places=2, default=Decimal("1.00"), validators=weight_validators)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["template", "position", "id"]
        verbose_name = "LoRA in stack"
        constraints = [
            models.UniqueConstraint(fields=["template", "lora"], name="template_lora_unique"),
            models.CheckConstraint(
                condition=models.Q(weight__gte=-2, weight__lte=2), name="template_lora_weight_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lora} @ {self.weight}"


class BatchGenerationRun(Job):
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
    FINISHED = TERMINAL

    template = models.ForeignKey(BatchTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    # The template as it was when the run started: later edits do not change a run.
    template_snapshot = models.JSONField(default=dict, blank=True)
    theme = models.CharField(max_length=500, blank=True)
    overrides = models.JSONField(default=dict, blank=True)
    album = models.ForeignKey(
        "albums.Album", null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_runs"
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    total_items = models.PositiveIntegerField(default=0)
    completed_items = models.PositiveIntegerField(default=0)
    failed_items = models.PositiveIntegerField(default=0)
    # A variant of a deck comparison: its place among the comparison's columns.
    comparison = models.ForeignKey(
        "DeckComparison", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    variant = models.PositiveSmallIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_runs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.template_snapshot.get('name', self.template)}"


class GenerationJob(Job):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED = Job.TERMINAL
    # A chunk can outlive a short visibility timeout: a redelivery to another worker must not
    # make the same images again while the first worker still beats (issue 18).
    REDELIVERY_TAKES_OVER = False

    run = models.ForeignKey(BatchGenerationRun, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    row_index = models.PositiveIntegerField(null=True, blank=True)
    # A take of a deck's card: the run's image for the row, a re-roll or a variation.
    slot = models.ForeignKey("DeckSlot", null=True, blank=True, on_delete=models.SET_NULL, related_name="takes")
    # img2img ("vary"): the image to start from and how much of it to repaint, in (0, 1].
    init_image = models.ForeignKey(
        "albums.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="variations"
    )
    strength = models.FloatField(null=True, blank=True)
    # A layout guide steering this job (cards' LayoutGuide, rendered for its row): {"mode":
    # "img2img" | "controlnet", "image": media path, "sha256", "strength" | "scale", "start", "end"}.
    guide = models.JSONField(default=dict, blank=True)
    album = models.ForeignKey("albums.Album", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    prompt_parts = models.JSONField(default=dict, blank=True)
    width = models.PositiveIntegerField(validators=size_validators)
    height = models.PositiveIntegerField(validators=size_validators)
    steps = models.PositiveIntegerField(validators=[MinValueValidator(STEPS_MIN), MaxValueValidator(STEPS_MAX)])
    guidance_scale = models.FloatField(validators=[MinValueValidator(GUIDANCE_MIN), MaxValueValidator(GUIDANCE_MAX)])
    seed = models.BigIntegerField(help_text="Always chosen and stored before the job runs.")
    scheduler = models.CharField(max_length=64, blank=True)
    # [{"name", "sha256", "weight"}], in stack order, as it was when the job was made.
    lora_stack = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    result_image = models.OneToOneField(
        "albums.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_job"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_jobs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "row_index"], name="job_run_row_unique", condition=models.Q(run__isnull=False)
            ),
        ]
        indexes = [*Job.Meta.indexes, models.Index(fields=["run", "status"])]
        permissions = [("generate", "Can generate images (single jobs and batch runs)")]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.status})"

    @property
    def current_step(self) -> int:
        """The denoising step of this job's image (the API's and the pages' name)."""
        return self.progress_done


class DeckSlot(models.Model):
    """One card of a deck (a generated album): a template row with its takes and its pick.

    Takes are the GenerationJobs pointing here (``takes``); the pick is the image exports and
    finishing use for this card, the first finished take until someone picks another.
    """

    album = models.ForeignKey("albums.Album", on_delete=models.CASCADE, related_name="slots")
    index = models.PositiveIntegerField(help_text="The template row, from 0.")
    title = models.CharField(max_length=300, blank=True)
    row = models.JSONField(default=dict, blank=True)
    # Replaces the row's rendered text in the prompts of this slot's new takes.
    prompt_edit = models.TextField(blank=True)
    # The run whose settings new takes repeat (template snapshot, theme, size, steps, LoRAs).
    run = models.ForeignKey(BatchGenerationRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="slots")
    pick = models.ForeignKey("albums.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["album", "index"]
        verbose_name = "deck slot"
        constraints = [models.UniqueConstraint(fields=["album", "index"], name="deck_slot_unique")]

    def __str__(self) -> str:
        return f"{self.index + 1}. {self.title}"


class DeckComparison(models.Model):
    """Up to four runs of one template differing in named settings, shown as slots x variants."""

    template = models.ForeignKey(BatchTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    # Per variant, in column order: the settings it changes ({"theme": ..., "lora_weights": ...}).
    variants = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="deck_comparisons"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class EngineWorker(models.Model):
    """What a gpu worker process has loaded, written by the worker and read by pages and the API.

    The web process never imports torch: this row is how it learns the model, device and
    whether the model is the built-in noise model.
    """

    hostname = models.CharField(max_length=255, unique=True)
    model_id = models.CharField(max_length=500, blank=True)
    is_noise_model = models.BooleanField(default=False)
    device = models.CharField(max_length=32, blank=True)
    loaded = models.BooleanField(default=False)
    info = models.JSONField(default=dict, blank=True)
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return f"{self.hostname}: {self.model_id} on {self.device}"
