"""Project-wide models: the runtime configuration (one row) and the abstract background Job.

Config holds generation defaults and hardware options.

Paths, secrets and the model come from the environment (settings) and are never stored
here, so nothing written over HTTP can point the app at another file or model. Read and
write it through :mod:`imagineer.config`, which validates every key.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Config(models.Model):
    class Device(models.TextChoices):
        AUTO = "auto", "Automatic"
        CUDA = "cuda", "CUDA"
        MPS = "mps", "Apple MPS"
        CPU = "cpu", "CPU"

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    # generation defaults (used when a request leaves a value out)
    width = models.PositiveIntegerField(default=512)
    height = models.PositiveIntegerField(default=512)
    steps = models.PositiveIntegerField(default=25)
    guidance_scale = models.FloatField(default=8.0)
    negative_prompt = models.TextField(blank=True, default="blurry, low quality, distorted, deformed")
    batch_size = models.PositiveIntegerField(
        default=0, help_text="Prompts per pipeline call on the GPU worker; 0 = automatic."
    )
    # hardware options (read by the GPU worker when it loads the pipeline)
    device = models.CharField(max_length=8, choices=Device.choices, default=Device.AUTO)
    mixed_precision = models.BooleanField(default=True)
    enable_attention_slicing = models.BooleanField(default=False)
    enable_vae_slicing = models.BooleanField(default=False)
    enable_xformers = models.BooleanField(default=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "configuration"
        verbose_name_plural = "configuration"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="config_singleton")]

    def __str__(self) -> str:
        return "Imagineer configuration"


class Job(models.Model):
    """The lifecycle every kind of background work shares (imagineer/jobs.py writes it).

    Status transitions (every write is a conditional update, so a redelivered or late task
    cannot move a row backwards)::

        queued     -> running                 claim (a worker starts it)
        queued     -> cancelled               cancel before it started (its message is revoked)
        running    -> cancelling              cancel while it runs (cancel_requested is set)
        running    -> <SUCCEEDED>             job_finish
        running    -> failed                  job_fail (the work's own error, or the attempt limit)
        running    -> queued                  release (a worker hands it back, e.g. shutting down)
        running    -> running                 takeover: a new claim when the heartbeat is stale,
                                              or the same task id redelivered
        cancelling -> cancelled               the worker saw the flag (or the heartbeat went stale)
        cancelling -> <SUCCEEDED> | failed    the work ended before the flag was seen
        <TERMINAL> -> queued                  retry (a new attempt count)

    Each kind keeps the words its API already shows: ``STATUS_SUCCEEDED`` is ``succeeded`` for
    jobs and ``completed`` for runs; ``TERMINAL`` and ``IN_PROGRESS`` are the one place that
    says which values are finished and which hold a worker. A subclass overrides ``status``
    with its own choices.
    """

    STATUS_QUEUED = "queued"
    STATUS_RUNNING = "running"
    STATUS_CANCELLING = "cancelling"
    STATUS_SUCCEEDED = "succeeded"
    STATUS_FAILED = "failed"
    STATUS_CANCELLED = "cancelled"
    TERMINAL: frozenset[str] = frozenset({STATUS_SUCCEEDED, STATUS_FAILED, STATUS_CANCELLED})
    IN_PROGRESS: frozenset[str] = frozenset({STATUS_RUNNING, STATUS_CANCELLING})
    # A message redelivered while its row is in progress means its worker died, so it takes the
    # row over at once. Off for work that can outlive the broker's visibility timeout (Redis
    # hands a message that long unacknowledged to another worker while the first still runs
    # it): there a redelivery waits for the heartbeat to go stale.
    REDELIVERY_TAKES_OVER: bool = True

    status = models.CharField(max_length=32, default=STATUS_QUEUED, db_index=True)
    cancel_requested = models.BooleanField(default=False)
    # The Celery task id of the message that will run (or runs) this row; several rows may
    # share one (a generation chunk).
    task_id = models.CharField(max_length=64, blank=True)
    # host:pid of the worker process that holds the row; written by the claim.
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # None: settings.IMAGINEER_JOB_MAX_ATTEMPTS.
    max_attempts = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="%(class)s_stat_hb")]

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def is_in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS

    @property
    def attempt_limit(self) -> int:
        return self.max_attempts or settings.IMAGINEER_JOB_MAX_ATTEMPTS

    @property
    def attempt_label(self) -> str:
        """The "attempt 2 of 3" pages and serializers show; empty before the first claim."""
        return f"attempt {self.attempts} of {self.attempt_limit}" if self.attempts else ""
