"""The runtime configuration: one row of generation defaults and hardware options.

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
