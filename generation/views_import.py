"""The Generate page's recipe import: a PNG from A1111, ComfyUI, InvokeAI, NovelAI or Imagineer
fills the single-image form (nothing is generated until the form is sent)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from generation.forms import GenerateForm
from generation.models import Lora
from generation.recipes import MAX_FILE_BYTES
from generation.services.recipe_import import recipe_import
from imagineer.errors import ApplicationError
from imagineer.permissions import GENERATE, role_required


@require_POST
@role_required(GENERATE)
def generate_import(request: HttpRequest) -> HttpResponse:
    loras = list(Lora.objects.all())
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ApplicationError("Choose a PNG file (or drop one on the page) to read its recipe.")
        imported = recipe_import(data=upload.read(MAX_FILE_BYTES + 1))
    except ApplicationError as exc:
        context = {"form": GenerateForm(loras=loras), "import_error": " ".join(exc.fields.get("file", [exc.message]))}
        return render(request, "generation/generate.html", context, status=400)
    form = GenerateForm(loras=loras, initial=imported.form_initial())
    return render(request, "generation/generate.html", {"form": form, "imported": imported})
