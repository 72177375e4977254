from __future__ import annotations

from rest_framework import serializers

from imagineer.api_common import JOB_STATE_FIELDS, JobStateSerializer
from training.models import TrainingRun


class TrainingStartSerializer(serializers.Serializer):
    """Shape only; ranges, the album's images and captions are checked by ``training_start``."""

    album = serializers.IntegerField(help_text="Id of the album to train on (at least 2 captioned images).")
    name = serializers.CharField(max_length=200)
    trigger_word = serializers.CharField(max_length=100)
    base_model = serializers.CharField(required=False, allow_blank=True)
    caption_source = serializers.ChoiceField(choices=TrainingRun.CaptionSource.choices, required=False)
    sample_prompts = serializers.ListField(child=serializers.CharField(), required=False)
    learning_rate = serializers.FloatField(required=False)
    rank = serializers.IntegerField(required=False)
    alpha = serializers.FloatField(required=False)
    dropout = serializers.FloatField(required=False)
    max_steps = serializers.IntegerField(required=False)
    save_every = serializers.IntegerField(required=False)
    resolution = serializers.IntegerField(required=False)
    batch_size = serializers.IntegerField(required=False)
    gradient_accumulation = serializers.IntegerField(required=False)
    seed = serializers.IntegerField(required=False, min_value=0)
    mixed_precision = serializers.BooleanField(required=False)


class TrainingRunSerializer(JobStateSerializer, serializers.ModelSerializer):
    current_step = serializers.IntegerField(
        source="progress_done", read_only=True, help_text="The last optimizer step done."
    )
    progress_percent = serializers.IntegerField(read_only=True)
    album_name = serializers.CharField(source="album.name", read_only=True, default=None)
    lora_name = serializers.CharField(source="lora.name", read_only=True, default=None)
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "trigger_word",
            "album",
            "album_name",
            "base_model",
            "base_model_hash",
            "status",
            "phase",
            "current_step",
            "max_steps",
            "progress_percent",
            "steps_per_second",
            "eta_seconds",
            "cancel_requested",
            "learning_rate",
            "rank",
            "alpha",
            "dropout",
            "save_every",
            "resolution",
            "batch_size",
            "gradient_accumulation",
            "seed",
            "mixed_precision",
            "caption_source",
            "sample_prompts",
            "checkpoints",
            "lora",
            "lora_name",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            *JOB_STATE_FIELDS,
        ]
        read_only_fields = fields


class TrainingRunDetailSerializer(TrainingRunSerializer):
    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "loss_history", "dataset"]
        read_only_fields = fields
