"""Shapes of templates, runs, jobs and LoRAs; validation of generate and run-start requests.

Serializers check types, ranges and that named LoRAs exist and fit SD 1.5; the services
check everything that needs the domain (prompt construction, template rows) and raise
ApplicationError, which the API maps to the same 400 body.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse
from rest_framework.utils import html

from albums.models import Album
from generation.engine.schedulers import SCHEDULERS
from generation.models import (
    GUIDANCE_MAX,
    GUIDANCE_MIN,
    LORA_WEIGHT_MAX,
    LORA_WEIGHT_MIN,
    SIZE_MAX,
    SIZE_MIN,
    STEPS_MAX,
    STEPS_MIN,
    BatchGenerationRun,
    BatchTemplate,
    GenerationJob,
    Lora,
)
from generation.services.jobs import SEED_MAX
from imagineer.api_common import JOB_STATE_FIELDS, JobStateSerializer, object_url

PROMPT_MAX = settings.IMAGINEER_MAX_PROMPT_CHARS


def _multiple_of_8(value: int) -> None:
    if value % 8:
        low = value - value % 8
        raise serializers.ValidationError(f"{value} is not a multiple of 8; use {low} or {low + 8}.")


def size_field(**kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=SIZE_MIN,
        max_value=SIZE_MAX,
        validators=[_multiple_of_8],
        help_text=f"Pixels, a multiple of 8 between {SIZE_MIN} and {SIZE_MAX}.",
        **kwargs,
    )


# --- LoRAs ------------------------------------------------------------------------------


class FiniteFloatField(serializers.FloatField):
    """A float that JSON can carry: NaN and infinities (which a row may hold from before files
    were checked) are shown as null, so that one row cannot break a whole list."""

    def to_representation(self, value: Any) -> float | None:  # type: ignore[override]  # null for NaN/inf
        number = float(value)
        return number if math.isfinite(number) else None


class LoraSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    alpha = FiniteFloatField(read_only=True, allow_null=True)
    in_use = serializers.SerializerMethodField(help_text="Used by a template: it cannot be deleted.")

    class Meta:
        model = Lora
        fields = [
            "id",
            "url",
            "name",
            "file_size",
            "sha256",
            "base",
            "rank",
            "alpha",
            "trigger_words",
            "default_weight",
            "description",
            "source",
            "in_use",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_url(self, obj: Lora) -> str:
        return object_url(self, "api:lora-detail", obj.pk)

    def get_in_use(self, obj: Lora) -> bool:
        return bool(getattr(obj, "template_uses", 0))


class LoraUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .safetensors LoRA (pickles are refused).")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class LoraWeightSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="A LoRA's name in the library.")
    weight = serializers.DecimalField(
        max_digits=4, decimal_places=2, min_value=LORA_WEIGHT_MIN, max_value=LORA_WEIGHT_MAX, required=False
    )


# --- single jobs ------------------------------------------------------------------------


class GenerateSerializer(serializers.Serializer):
    """POST /api/generate. Fields left out take the configured defaults (/api/config)."""

    prompt = serializers.CharField(max_length=PROMPT_MAX, trim_whitespace=True)
    negative_prompt = serializers.CharField(max_length=PROMPT_MAX, required=False, allow_blank=True)
    width = size_field(required=False)
    height = size_field(required=False)
    steps = serializers.IntegerField(min_value=STEPS_MIN, max_value=STEPS_MAX, required=False)
    guidance_scale = serializers.FloatField(min_value=GUIDANCE_MIN, max_value=GUIDANCE_MAX, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, required=False, allow_null=True)
    scheduler = serializers.ChoiceField(
        choices=sorted(SCHEDULERS), required=False, allow_blank=True, help_text="Default: the configured scheduler."
    )
    loras = LoraWeightSerializer(many=True, required=False, help_text="The LoRA stack, in order.")
    album = serializers.PrimaryKeyRelatedField(
        queryset=Album.objects.all(), required=False, allow_null=True, help_text="Put the image in this album."
    )

    def validate_loras(self, value: list[dict[str, Any]]) -> list[tuple[Lora, Decimal]]:
        """Names to library entries; whether each fits the model is the service's check."""
        found = {lora.name: lora for lora in Lora.objects.filter(name__in=[entry["name"] for entry in value])}
        unknown = [entry["name"] for entry in value if entry["name"] not in found]
        if unknown:
            raise serializers.ValidationError(f"Unknown LoRA {unknown[0]!r}; GET /api/loras lists the library.")
        return [(found[entry["name"]], entry.get("weight", found[entry["name"]].default_weight)) for entry in value]


class JobSerializer(JobStateSerializer, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    current_step = serializers.IntegerField(source="progress_done", read_only=True)
    image_id = serializers.IntegerField(source="result_image_id", read_only=True, allow_null=True)
    image_url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "url",
            "status",
            "prompt",
            "negative_prompt",
            "width",
            "height",
            "steps",
            "guidance_scale",
            "seed",
            "scheduler",
            "lora_stack",
            "run",
            "row_index",
            "album",
            "current_step",
            "cancel_requested",
            "error",
            "image_id",
            "image_url",
            "file_url",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            *JOB_STATE_FIELDS,
        ]
        read_only_fields = fields

    def get_url(self, obj: GenerationJob) -> str:
        return object_url(self, "api:job-detail", obj.pk)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, obj: GenerationJob) -> str | None:
        if not obj.result_image_id:
            return None
        return object_url(self, "api:image-detail", obj.result_image_id)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_file_url(self, obj: GenerationJob) -> str | None:
        if not obj.result_image_id:
            return None
        return object_url(self, "api:image-file", obj.result_image_id)


# --- templates and runs -----------------------------------------------------------------


class TemplateLoraSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="lora.id")
    name = serializers.CharField(source="lora.name")
    weight = serializers.DecimalField(max_digits=4, decimal_places=2)


class BatchTemplateSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    row_count = serializers.IntegerField(read_only=True)
    loras = TemplateLoraSerializer(source="lora_stack", many=True, read_only=True)

    class Meta:
        model = BatchTemplate
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "description",
            "example_theme",
            "width",
            "height",
            "steps",
            "guidance_scale",
            "row_count",
            "loras",
            "is_builtin",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, obj: BatchTemplate) -> str:
        return object_url(self, "api:batch-template-detail", obj.pk)


class BatchTemplateDetailSerializer(BatchTemplateSerializer):
    """A template with its CSV rows (``columns`` in header order, ``rows`` as {column: value})."""

    rows = serializers.ListField(source="csv_data", child=serializers.DictField(), read_only=True)

    class Meta(BatchTemplateSerializer.Meta):
        fields = [
            *BatchTemplateSerializer.Meta.fields,
            "columns",
            "rows",
            "base_prompt",
            "prompt_template",
            "style_suffix",
            "negative_prompt",
        ]
        read_only_fields = fields


class RunOverridesSerializer(serializers.Serializer):
    steps = serializers.IntegerField(min_value=STEPS_MIN, max_value=STEPS_MAX, required=False)
    guidance_scale = serializers.FloatField(min_value=GUIDANCE_MIN, max_value=GUIDANCE_MAX, required=False)
    width = size_field(required=False)
    height = size_field(required=False)
    negative_prompt = serializers.CharField(max_length=PROMPT_MAX, required=False, allow_blank=True)
    style_suffix = serializers.CharField(
        max_length=PROMPT_MAX,
        required=False,
        allow_blank=True,
        help_text="Replaces the template's style suffix for this run; empty: none.",
    )
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, required=False, allow_null=True)
    seed_policy = serializers.ChoiceField(
        choices=["random", "fixed", "increment"],
        required=False,
        help_text="random: a new seed per row; fixed: `seed` for every row; increment: seed, seed+1, ...",
    )
    lora_weights = serializers.DictField(
        child=serializers.DecimalField(
            max_digits=4, decimal_places=2, min_value=LORA_WEIGHT_MIN, max_value=LORA_WEIGHT_MAX
        ),
        required=False,
        help_text="New weights for LoRAs of the template's stack, by name.",
    )


FORM_OVERRIDES_HELP = (
    'In a form, send overrides as one field "overrides" holding a JSON object '
    '(overrides={"steps": 20}) or as dotted fields (overrides.steps=20), or send the request as JSON.'
)


def _form_overrides(data: Any) -> Any:
    """A form body's ``overrides``: a JSON object in one field, or DRF's dotted fields.

    Anything else under that name (``overrides[steps]``, a JSON list) used to be dropped
    silently, and the run went ahead with the template's defaults; it is refused instead.
    """
    stray = sorted(
        key for key in data if key.startswith("overrides") and key != "overrides" and not key.startswith("overrides.")
    )
    if stray:
        raise serializers.ValidationError({"overrides": [f"{stray[0]!r} is not understood. {FORM_OVERRIDES_HELP}"]})
    if "overrides" not in data:
        return data
    if any(key.startswith("overrides.") for key in data):
        raise serializers.ValidationError(
            {"overrides": ["Send overrides either as one JSON field or as dotted fields, not both."]}
        )
    try:
        overrides = json.loads(data["overrides"])
    except ValueError as error:
        raise serializers.ValidationError(
            {"overrides": [f"The overrides field is not valid JSON ({error}). {FORM_OVERRIDES_HELP}"]}
        ) from None
    if not isinstance(overrides, dict):
        raise serializers.ValidationError(
            {"overrides": [f"The overrides field must hold a JSON object. {FORM_OVERRIDES_HELP}"]}
        )
    return {**{key: data[key] for key in data if key != "overrides"}, "overrides": overrides}


class RunStartSerializer(serializers.Serializer):
    """POST /api/batch-templates/<id>/generate."""

    theme = serializers.CharField(max_length=500, required=False, allow_blank=True, help_text="The user theme.")
    user_theme = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="The original API's name for theme.",
    )
    album_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    overrides = RunOverridesSerializer(
        required=False,
        help_text='In a form (multipart) body: one field `overrides` holding a JSON object (`{"steps": 20}`), '
        "or dotted fields (`overrides.steps`).",
    )
    rows = serializers.ListField(
        child=serializers.IntegerField(min_value=0),
        required=False,
        help_text="Try first: only these template rows (from 0); complete the deck later.",
    )
    first = serializers.IntegerField(required=False, min_value=1, help_text="Try first: only the first N rows.")
    sample = serializers.IntegerField(required=False, min_value=1, help_text="Try first: N rows at random.")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        return super().to_internal_value(_form_overrides(data) if html.is_html_input(data) else data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        theme = attrs.pop("user_theme", None)
        if "theme" not in attrs:
            if theme is None:
                raise serializers.ValidationError({"theme": ['Give a theme, e.g. "gothic steampunk".']})
            attrs["theme"] = theme
        return attrs


class RunCurrentItemSerializer(serializers.Serializer):
    row_index = serializers.IntegerField()
    prompt = serializers.CharField()
    step = serializers.IntegerField()
    steps = serializers.IntegerField()


class RunItemSerializer(serializers.Serializer):
    row_index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=GenerationJob.Status.choices)
    step = serializers.IntegerField(help_text="Denoising steps done for this item.")
    image_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField(help_text="Times a worker has taken this item (0 before the first).")
    attempt_limit = serializers.IntegerField(help_text="Takes allowed before the item fails with its last error.")


class RunProgressDataSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=BatchGenerationRun.Status.choices)
    total = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    cancelling = serializers.IntegerField()
    steps_done = serializers.IntegerField(help_text="Denoising steps done over the whole run.")
    steps_total = serializers.IntegerField(help_text="Denoising steps the run's unfailed items need.")
    current_item = RunCurrentItemSerializer(allow_null=True, help_text="The running item furthest along.")
    eta_seconds = serializers.FloatField(allow_null=True, help_text="Estimated seconds left; null when unknown.")
    items = RunItemSerializer(many=True)


class RunSerializer(JobStateSerializer, serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    template_name = serializers.SerializerMethodField()
    album_url = serializers.SerializerMethodField()

    class Meta:
        model = BatchGenerationRun
        fields = [
            "id",
            "url",
            "template",
            "template_name",
            "theme",
            "overrides",
            "status",
            "total_items",
            "completed_items",
            "failed_items",
            "cancel_requested",
            "error",
            "album",
            "album_url",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_url(self, obj: BatchGenerationRun) -> str | None:
        """Runs live under their template; one whose template was deleted has no URL."""
        if obj.template_id is None:
            return None
        kwargs = {"template_pk": obj.template_id, "pk": obj.pk}
        return reverse("api:batch-template-run-detail", kwargs=kwargs, request=self.context.get("request"))

    def get_template_name(self, obj: BatchGenerationRun) -> str:
        return str(obj.template_snapshot.get("name", ""))

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_album_url(self, obj: BatchGenerationRun) -> str | None:
        if not obj.album_id:
            return None
        return object_url(self, "api:album-detail", obj.album_id)


class RunProgressSerializer(RunSerializer):
    """A run with its progress: counts, the item being made, an ETA and every item's status."""

    progress = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "progress"]
        read_only_fields = fields

    @extend_schema_field(RunProgressDataSerializer)
    def get_progress(self, obj: BatchGenerationRun) -> dict[str, Any]:
        return self.context["progress"]


class ThemeSerializer(serializers.Serializer):
    theme = serializers.CharField()
