"""The LoRA library pages: list, upload, one LoRA (edit, samples), delete.

Uploading needs the generate role; editing and deleting a LoRA is controlling it (its uploader or
a curator, :func:`imagineer.permissions.can_control`).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from generation.engine.lora_files import lora_fit_error
from generation.engine.source import model_base_label
from generation.forms_loras import LoraEditForm, LoraUploadForm
from generation.models import Lora
from generation.selectors import lora_library, lora_samples, lora_samples_by_sha, model_base_configured
from generation.services.loras import lora_delete, lora_update, lora_upload
from imagineer import permissions as perms
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import GENERATE, SignedInRequest, role_required


def _list_page(request: SignedInRequest, *, upload_form: LoraUploadForm, status: int = 200) -> HttpResponse:
    loras = list(lora_library())
    samples = lora_samples_by_sha()
    return render(
        request,
        "generation/lora_list.html",
        {
            "rows": [(lora, samples.get(lora.sha256, [])) for lora in loras],
            "upload_form": upload_form,
            "model_base": model_base_label(model_base_configured()),
        },
        status=status,
    )


@require_safe
@role_required()
def lora_list_page(request: SignedInRequest) -> HttpResponse:
    return _list_page(request, upload_form=LoraUploadForm())


@require_POST
@role_required(GENERATE)
def lora_upload_view(request: SignedInRequest) -> HttpResponse:
    form = LoraUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            lora = lora_upload(
                uploaded_file=form.cleaned_data["file"],
                name=form.cleaned_data["name"] or None,
                created_by=request.user,
            )
        except ApplicationError as exc:
            form_add_application_error(form, exc, fallback="file")
        else:
            messages.success(request, f"LoRA “{lora.name}” is in the library ({lora.get_base_display()}).")
            return redirect("generation:lora-detail", pk=lora.pk)
    return _list_page(request, upload_form=form, status=400)


def _lora_get(pk: int) -> Lora:
    return get_object_or_404(lora_library(), pk=pk)


@require_http_methods(["GET", "HEAD", "POST"])
@role_required()
def lora_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    lora = _lora_get(pk)
    can_control = perms.can_control(request.user, lora)
    status = 200
    if request.method == "POST":
        perms.ensure_can_control(request.user, lora)
        form = LoraEditForm.for_lora(lora, request.POST)
        if form.is_valid():
            try:
                lora_update(lora=lora, **form.cleaned_data)
            except ApplicationError as exc:
                form_add_application_error(form, exc)
            else:
                messages.success(request, "Saved.")
                return redirect("generation:lora-detail", pk=lora.pk)
        status = 400
    else:
        form = LoraEditForm.for_lora(lora)
    base = model_base_configured()
    context = {
        "lora": lora,
        "form": form,
        "can_control": can_control,
        "samples": lora_samples(lora=lora),
        "unfit": lora_fit_error(lora_name=lora.name, lora_base=lora.base, model_base=base),
        "templates": list(lora.templates.all()),
        "training_runs": list(lora.training_runs.all()),
    }
    return render(request, "generation/lora_detail.html", context, status=status)


@require_POST
@role_required(GENERATE)
def lora_delete_view(request: SignedInRequest, pk: int) -> HttpResponse:
    lora = _lora_get(pk)
    perms.ensure_can_control(request.user, lora)
    try:
        lora_delete(lora=lora)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("generation:lora-detail", pk=lora.pk)
    messages.success(request, f"LoRA “{lora.name}” and its file are deleted.")
    return redirect("generation:lora-list")
