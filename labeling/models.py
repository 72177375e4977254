from __future__ import annotations

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
