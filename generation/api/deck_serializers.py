"""Shapes of decks in the API: slots with their takes and pick, and the requests that change them."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from generation.deck_selectors import DeckCard
from generation.models import GenerationJob
from generation.services.decks import TAKES_MAX, TAKES_MIN
from generation.services.jobs import SEED_MAX
from imagineer.api_common import object_url


class TakeSerializer(serializers.Serializer):
    """One take of a card: a generation job (its image once finished)."""

    job_id = serializers.IntegerField(source="pk")
    status = serializers.ChoiceField(choices=GenerationJob.Status.choices)
    seed = serializers.IntegerField()
    strength = serializers.FloatField(allow_null=True, help_text="img2img strength for a variation, else null.")
    init_image = serializers.IntegerField(source="init_image_id", allow_null=True)
    current_step = serializers.IntegerField(source="progress_done")
    steps = serializers.IntegerField()
    error = serializers.CharField()
    image_id = serializers.IntegerField(source="result_image_id", allow_null=True)
    image_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_image_url(self, job: GenerationJob) -> str | None:
        return object_url(self, "api:image-file", job.result_image_id) if job.result_image_id else None


class SlotSerializer(serializers.Serializer):
    """A card: its row, title, takes (oldest first) and pick (``pick_id``: null until one is made)."""

    index = serializers.IntegerField(source="slot.index", help_text="The template row, from 0.")
    title = serializers.CharField(source="slot.title")
    row = serializers.DictField(source="slot.row")
    prompt_edit = serializers.CharField(source="slot.prompt_edit")
    pick_id = serializers.SerializerMethodField(help_text="The picked image, else the first finished take.")
    picked = serializers.SerializerMethodField(help_text="True when someone picked; false for the default.")
    pending = serializers.IntegerField(help_text="Takes queued or running.")
    takes = TakeSerializer(many=True)

    def get_pick_id(self, card: DeckCard) -> int | None:
        return card.pick.pk if card.pick is not None else None

    def get_picked(self, card: DeckCard) -> bool:
        return card.slot.pick_id is not None


class TakesRequestSerializer(serializers.Serializer):
    count = serializers.IntegerField(default=1, help_text=f"Takes per card, {TAKES_MIN} to {TAKES_MAX}.")
    prompt_edit = serializers.CharField(
        required=False, allow_blank=True, help_text="Replaces the row's text in this card's prompts (kept on it)."
    )


class DeckTakesRequestSerializer(serializers.Serializer):
    count = serializers.IntegerField(default=1, help_text=f"Takes per card, {TAKES_MIN} to {TAKES_MAX}.")
    slots = serializers.ListField(
        child=serializers.IntegerField(min_value=0), required=False, help_text="Card indices (from 0)."
    )
    all = serializers.BooleanField(default=False, help_text="Every card of the deck.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs["all"] and not attrs.get("slots"):
            raise serializers.ValidationError({"slots": ["Give card indices in slots, or all: true."]})
        return attrs


class VaryRequestSerializer(serializers.Serializer):
    image = serializers.IntegerField(help_text="The take (image id) to start from; a take of this card.")
    strength = serializers.FloatField(help_text="How much to repaint, in (0, 1]; A1111's denoising strength.")
    seed = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=SEED_MAX, help_text="Default: the take's seed."
    )
    new_seed = serializers.BooleanField(default=False, help_text="A new random seed per variation.")
    count = serializers.IntegerField(default=1, help_text=f"Variations, {TAKES_MIN} to {TAKES_MAX}.")


class PickRequestSerializer(serializers.Serializer):
    image = serializers.IntegerField(allow_null=True, help_text="A take of this card; null: back to the first take.")


class ComparisonStartSerializer(serializers.Serializer):
    template = serializers.IntegerField(help_text="The batch template every variant runs.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    theme = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    variants = serializers.ListField(
        child=serializers.DictField(),
        help_text="2 to 4 objects, each the settings its column changes: theme, style_suffix, steps, guidance_scale, "
        "lora_weights ({name: weight}), seed, seed_policy. Same seeds for all unless a variant sets them.",
    )
    rows = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False)
    first = serializers.IntegerField(required=False, min_value=1)
    sample = serializers.IntegerField(required=False, min_value=1)


class ComparisonCellSerializer(serializers.Serializer):
    album = serializers.IntegerField()
    pick_id = serializers.IntegerField(allow_null=True)
    take_image_ids = serializers.ListField(child=serializers.IntegerField())
    pending = serializers.IntegerField()


class ComparisonCardSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    title = serializers.CharField()
    cells = ComparisonCellSerializer(many=True, help_text="One per variant, in column order.")


class ComparisonVariantSerializer(serializers.Serializer):
    letter = serializers.CharField()
    differences = serializers.CharField(help_text="The settings this column changes.")
    run = serializers.IntegerField()
    album = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()


class ComparisonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    template = serializers.IntegerField(allow_null=True)
    variants = ComparisonVariantSerializer(many=True)
    cards = ComparisonCardSerializer(many=True)
