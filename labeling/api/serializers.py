"""Requests and answers of the labeling endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.reverse import reverse

from labeling.backends import BACKENDS
from labeling.models import Label, LabelingJob
from labeling.selectors import labeling_job_progress


class LabelRequestSerializer(serializers.Serializer):
    prompt_type = serializers.ChoiceField(choices=Label.PromptType.choices, default=Label.PromptType.DEFAULT)
    force = serializers.BooleanField(default=False, help_text="Relabel images that already have AI labels.")
    backend = serializers.ChoiceField(
        choices=BACKENDS, required=False, allow_null=True, help_text="Labeler to use; default: the configured one."
    )


class LabelQueuedSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="Always `queued`.")
    task_id = serializers.CharField()
    status_url = serializers.URLField(help_text="Poll this for the outcome (also the Location header).")


class LabelingJobQueuedSerializer(LabelQueuedSerializer):
    job_id = serializers.IntegerField()


class TaskStatusSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status = serializers.CharField(
        help_text="pending (queued or unknown), started, retry, success or failure (Celery's states, lower case)."
    )
    result = serializers.JSONField(allow_null=True, help_text="The task's result once it succeeded.")
    error = serializers.CharField(allow_null=True)


class LabelingJobSerializer(serializers.Serializer):
    """An album labeling job with its progress (labeling.selectors.labeling_job_progress)."""

    id = serializers.IntegerField()
    album_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=LabelingJob.Status.choices)
    prompt_type = serializers.CharField()
    backend = serializers.CharField()
    force = serializers.BooleanField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    remaining = serializers.IntegerField()
    percent = serializers.IntegerField()
    progress_done = serializers.IntegerField(help_text="Images processed: done + failed + skipped.")
    progress_total = serializers.IntegerField(help_text="The album's images (total).")
    is_active = serializers.BooleanField()
    # DRF's metaclass takes declared fields off the class: Serializer.errors is untouched at run time.
    errors = serializers.ListField(child=serializers.DictField())  # type: ignore[assignment]
    error = serializers.CharField(help_text="Why the job failed as a whole (its fan-out); per image: errors.")
    task_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.URLField()

    def to_representation(self, instance: LabelingJob) -> dict[str, Any]:
        url = reverse("api:labeling-job-detail", kwargs={"pk": instance.pk}, request=self.context.get("request"))
        return {**labeling_job_progress(job=instance), "url": url}
