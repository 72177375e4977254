"""``POST /api/generate/import``: a PNG's generation recipe as values for ``POST /api/generate``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.recipes import MAX_FILE_BYTES
from generation.services.recipe_import import recipe_import
from imagineer.errors import field_error
from imagineer.permissions import GENERATE


class RecipeImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A PNG made by A1111, ComfyUI, InvokeAI, NovelAI or Imagineer.")


class ImportedLoraSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    weight = serializers.FloatField()
    matched_by = serializers.ChoiceField(choices=["hash", "name"])


class UnmatchedLoraSerializer(serializers.Serializer):
    name = serializers.CharField()
    weight = serializers.FloatField()
    hash = serializers.CharField(help_text="The short hash the recipe names it by, when it has one.")


class RecipeImportSerializer(serializers.Serializer):
    generator = serializers.CharField(help_text="A1111, ComfyUI, InvokeAI, NovelAI or Imagineer.")
    prompt = serializers.CharField()
    negative_prompt = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    steps = serializers.IntegerField(allow_null=True)
    guidance_scale = serializers.FloatField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    scheduler = serializers.CharField(help_text="Ours (for POST /api/generate), mapped from the recipe's sampler.")
    sampler = serializers.CharField(help_text="The recipe's own sampler name.")
    schedule_type = serializers.CharField(help_text="The recipe's own schedule (A1111's schedule type).")
    loras = ImportedLoraSerializer(many=True, help_text="Matched in the library; [{id, weight}] goes to loras.")
    unmatched_loras = UnmatchedLoraSerializer(many=True, help_text="Named by the recipe, not in the library.")
    notes = serializers.ListField(child=serializers.CharField())


class RecipeImportView(APIView):
    required_permission = GENERATE
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        summary="Read a PNG's generation recipe",
        request={"multipart/form-data": RecipeImportRequestSerializer},
        responses={200: RecipeImportSerializer},
    )
    def post(self, request: Request) -> Response:
        upload = request.FILES.get("file")
        if upload is None:
            raise field_error("file", "Send the PNG as the multipart field 'file'.")
        imported = recipe_import(data=upload.read(MAX_FILE_BYTES + 1))
        recipe = imported.recipe
        body = {
            "generator": recipe.generator,
            "prompt": recipe.prompt,
            "negative_prompt": recipe.negative_prompt,
            "width": recipe.width,
            "height": recipe.height,
            "steps": recipe.steps,
            "guidance_scale": recipe.guidance_scale,
            "seed": recipe.seed,
            "scheduler": recipe.scheduler,
            "sampler": recipe.sampler,
            "schedule_type": recipe.schedule_type,
            "loras": [
                {"id": match.lora.pk, "name": match.lora.name, "weight": match.weight, "matched_by": match.matched_by}
                for match in imported.loras
            ],
            "unmatched_loras": [
                {"name": lora.name, "weight": lora.weight, "hash": lora.hash} for lora in imported.unmatched
            ],
            "notes": imported.notes,
        }
        return Response(RecipeImportSerializer(body).data)
