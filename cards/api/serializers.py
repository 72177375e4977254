"""Shapes of card designs and finishing jobs in the API."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cards.models import (
    HIRES_DENOISE_MAX,
    HIRES_DENOISE_MIN,
    HIRES_SCALE_MAX,
    HIRES_SCALE_MIN,
    CardDesign,
    FinishingJob,
    LayoutGuide,
    LayoutGuideImage,
)
from cards.services.designs import EDITABLE_FIELDS
from cards.services.finishing import EXPORT_FILES
from cards.services.guides import GUIDE_FIELDS
from imagineer.api_common import JOB_STATE_FIELDS, JobStateSerializer


class CardDesignSerializer(serializers.ModelSerializer):
    preview_url = serializers.SerializerMethodField(help_text="PNG preview; add ?index=N (and &album=ID).")

    class Meta:
        model = CardDesign
        fields = [
            "id",
            "name",
            "template",
            "size_preset",
            "width_mm",
            "height_mm",
            "dpi",
            "bleed_mm",
            "safe_margin_mm",
            "index_template",
            "title_template",
            "preview_url",
            "updated_at",
        ]
        read_only_fields = fields

    def get_preview_url(self, design: CardDesign) -> str:
        from rest_framework.reverse import reverse

        return reverse("cards-api:design-preview", kwargs={"pk": design.pk}, request=self.context.get("request"))


# Files (frame overlay, back image) are uploaded in the admin; everything else is JSON here.
DESIGN_JSON_FIELDS = [name for name in EDITABLE_FIELDS if name not in ("frame_overlay", "back_image")]


class CardDesignDetailSerializer(CardDesignSerializer):
    class Meta(CardDesignSerializer.Meta):
        fields = ["id", "template", *DESIGN_JSON_FIELDS, "preview_url", "created_at", "updated_at"]
        read_only_fields = fields


class CardDesignWriteSerializer(serializers.ModelSerializer):
    """A design's settings, types checked here; ``cards.services.designs`` validates the rest
    (sizes, art window, columns, glyph coverage) and names the field at fault."""

    class Meta:
        model = CardDesign
        fields = DESIGN_JSON_FIELDS
        extra_kwargs = {name: {"required": False} for name in DESIGN_JSON_FIELDS}


class CardDesignCreateSerializer(CardDesignWriteSerializer):
    template = serializers.IntegerField(help_text="The template the design belongs to.")

    class Meta(CardDesignWriteSerializer.Meta):
        fields = ["template", *DESIGN_JSON_FIELDS]
        extra_kwargs = {**CardDesignWriteSerializer.Meta.extra_kwargs, "name": {"required": True}}


class DesignCopySerializer(serializers.Serializer):
    template = serializers.IntegerField(required=False, help_text="Copy to this template (default: the same one).")
    name = serializers.CharField(required=False, max_length=200)


class FinishingJobSerializer(JobStateSerializer, serializers.ModelSerializer):
    files = serializers.SerializerMethodField(help_text="Export name -> download URL, once the job has succeeded.")
    missing = serializers.SerializerMethodField(help_text="Cards without a pick, not finished: index and title.")

    class Meta:
        model = FinishingJob
        fields = [
            "id",
            "album",
            "design",
            "status",
            "stage",
            "formats",
            "duplex",
            "force",
            "hires",
            "hires_scale",
            "hires_denoise",
            "error",
            "files",
            "missing",
            "created_at",
            "started_at",
            "finished_at",
            *JOB_STATE_FIELDS,
        ]
        read_only_fields = fields

    def get_files(self, job: FinishingJob) -> dict[str, str]:
        from rest_framework.reverse import reverse

        request = self.context.get("request")
        return {
            name: reverse("cards-api:finishing-file", kwargs={"pk": job.pk, "name": name}, request=request)
            for name in (job.result or {}).get("files", {})
        }

    def get_missing(self, job: FinishingJob) -> list[dict]:
        return list((job.result or {}).get("missing", []))


class FinishingRequestSerializer(serializers.Serializer):
    album = serializers.IntegerField(help_text="The deck (album) to finish.")
    design = serializers.IntegerField(help_text="The card design of the album's template.")
    formats = serializers.ListField(
        child=serializers.ChoiceField(choices=list(EXPORT_FILES)),
        required=False,
        default=list,
        help_text="Exports to write after finishing; empty: finish only.",
    )
    duplex = serializers.BooleanField(default=True, help_text="Print-and-play: a mirrored backs page per sheet.")
    force = serializers.BooleanField(default=False, help_text="Render every card again, even unchanged ones.")
    hires = serializers.BooleanField(
        default=False, help_text="Hires pass on the gpu worker first (Lanczos upscale + low-denoise img2img)."
    )
    hires_scale = serializers.FloatField(default=2.0, min_value=HIRES_SCALE_MIN, max_value=HIRES_SCALE_MAX)
    hires_denoise = serializers.FloatField(default=0.3, min_value=HIRES_DENOISE_MIN, max_value=HIRES_DENOISE_MAX)


GUIDE_NONE = "none"


class LayoutGuideImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = LayoutGuideImage
        fields = ["name", "width", "height", "created_at"]
        read_only_fields = fields


class LayoutGuideSerializer(serializers.ModelSerializer):
    """A template's layout guide; ``kind`` "none" when generation is not steered."""

    kind = serializers.ChoiceField(choices=[GUIDE_NONE, *LayoutGuide.Kind.values])
    template = serializers.IntegerField(source="template_id", read_only=True)
    images = serializers.SerializerMethodField(help_text="The uploaded layout images (by name).")
    preview_url = serializers.SerializerMethodField(help_text="PNG of the guide of one row; add ?index=N (from 1).")
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the guide was last saved; null while there is none."
    )

    class Meta:
        model = LayoutGuide
        fields = ["template", *GUIDE_FIELDS, "images", "preview_url", "updated_at"]
        read_only_fields = ["template", "images", "preview_url", "updated_at"]

    @extend_schema_field(LayoutGuideImageSerializer(many=True))
    def get_images(self, guide: LayoutGuide) -> list[dict]:
        if not guide.pk:
            return []
        return list(LayoutGuideImageSerializer(guide.images.all(), many=True).data)

    def get_preview_url(self, guide: LayoutGuide) -> str | None:
        from rest_framework.reverse import reverse

        if not guide.pk:
            return None
        return reverse(
            "cards-api:guide-preview", kwargs={"template_pk": guide.template_id}, request=self.context.get("request")
        )


class LayoutGuideWriteSerializer(serializers.ModelSerializer):
    """Types and ranges checked here (strength 0.05-1, scale 0-2, start/end 0-1); columns, rows
    and images by ``cards.services.guides``. Fields left out keep their values."""

    kind = serializers.ChoiceField(choices=[GUIDE_NONE, *LayoutGuide.Kind.values])

    class Meta:
        model = LayoutGuide
        fields = list(GUIDE_FIELDS)
        extra_kwargs = {name: {"required": False} for name in GUIDE_FIELDS if name != "kind"}


class LayoutGuideImageUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="Rows name the image by this (kind 'column').")
    file = serializers.FileField(help_text="PNG, JPEG or WebP; decoded and checked before it is kept.")
