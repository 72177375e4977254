"""The template editor on the pages: new, edit, duplicate, and the live preview of the
constructed prompts with their CLIP token counts.

Creators edit their own templates, curators all (:func:`imagineer.permissions.can_edit_template`);
built-ins are read-only here but anyone who may generate can duplicate one.

The preview (``templates/preview``) takes the editor's fields and answers an HTML fragment:
the form's errors beside the names of their fields, or every row's prompt with the theme being
typed and its token count. It is a plain POST of form fields, so other pages (the template page)
can send a saved template's fields to it as well.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from generation.forms_templates import TemplateEditForm
from generation.models import BatchTemplate
from generation.selectors import lora_list, template_list
from generation.services.templates import (
    LoraStackEntry,
    template_duplicate,
    template_row_prompt,
    template_save,
    template_slug_free,
)
from generation.tokens import CHUNK_TOKENS, prompt_tokens
from imagineer import permissions as perms
from imagineer.errors import ApplicationError, form_add_application_error
from imagineer.permissions import GENERATE, SignedInRequest, role_required

PREVIEW_ROWS = 200


def _save(form: TemplateEditForm, *, user: Any, instance: BatchTemplate | None) -> BatchTemplate | None:
    data = form.cleaned_data
    assert form.parsed is not None  # clean() parsed the rows, or the form is not valid
    try:
        return template_save(
            name=data["name"],
            slug=instance.slug if instance else template_slug_free(data["name"]),
            description=data["description"],
            prompt_template=data["prompt_template"],
            columns=form.parsed.columns,
            rows=form.parsed.rows,
            base_prompt=data["base_prompt"],
            style_suffix=data["style_suffix"],
            negative_prompt=data["negative_prompt"],
            example_theme=data["example_theme"],
            width=data["width"],
            height=data["height"],
            steps=data["steps"],
            guidance_scale=data["guidance_scale"],
            lora_stack=[LoraStackEntry(lora=lora, weight=weight) for lora, weight in form.lora_stack_chosen()],
            created_by=user if instance is None else instance.created_by,
            instance=instance,
        )
    except ApplicationError as exc:
        form_add_application_error(form, exc)
    except ValidationError as exc:  # the model's own checks (a name taken meanwhile, say)
        form.add_error(None, exc)
    return None


def _editor(request: SignedInRequest, *, template: BatchTemplate | None) -> HttpResponse:
    loras = list(lora_list())
    status = 200
    if request.method == "POST":
        form = TemplateEditForm(request.POST, request.FILES, loras=loras)
        if form.is_valid():
            saved = _save(form, user=request.user, instance=template)
            if saved is not None:
                messages.success(request, f"Template “{saved.name}” is saved.")
                return redirect("generation:template-detail", slug=saved.slug)
        status = 400
    else:
        form = TemplateEditForm(loras=loras, template=template)
    context = {"form": form, "template": template, "preview": _preview_context(form) if form.is_bound else None}
    return render(request, "generation/template_edit.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(GENERATE)
def template_new(request: SignedInRequest) -> HttpResponse:
    return _editor(request, template=None)


@require_http_methods(["GET", "HEAD", "POST"])
@role_required(GENERATE)
def template_edit(request: SignedInRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(template_list(), slug=slug)
    perms.ensure_can_edit_template(request.user, template)
    return _editor(request, template=template)


@require_POST
@role_required(GENERATE)
def template_duplicate_view(request: SignedInRequest, slug: str) -> HttpResponse:
    template = get_object_or_404(template_list(), slug=slug)
    try:
        copy = template_duplicate(template=template, created_by=request.user)
    except ApplicationError as exc:  # a LoRA of the stack may be unfit: the copy is not made
        messages.error(request, exc.message)
        return redirect("generation:template-detail", slug=template.slug)
    messages.success(request, f"“{copy.name}” is your copy of “{template.name}”: change it here.")
    return redirect("generation:template-edit", slug=copy.slug)


def _errors_by_label(form: TemplateEditForm) -> list[tuple[str, str]]:
    """(field label, message) for every error; the label is empty for the form's own errors."""
    return [
        (str(form[name].label) if name in form.fields else "", str(message))
        for name, messages_ in form.errors.items()
        for message in messages_
    ]


def _preview_context(form: TemplateEditForm) -> dict[str, Any]:
    """Every row's constructed prompt with its token count, or the form's errors by field label."""
    if not form.is_valid() and (form.parsed is None or form.has_error("prompt_template")):
        return {"errors": _errors_by_label(form)}
    assert form.parsed is not None
    data = form.cleaned_data
    theme = data.get("preview_theme") or data.get("example_theme", "")
    rows = []
    for index, row in enumerate(form.parsed.rows[:PREVIEW_ROWS]):
        prompt = template_row_prompt(
            base_prompt=data.get("base_prompt", ""),
            prompt_template=data.get("prompt_template", ""),
            style_suffix=data.get("style_suffix", ""),
            theme=theme,
            row=row,
        )
        counted = prompt_tokens(prompt)
        rows.append({"number": index + 1, "prompt": prompt, "tokens": counted.tokens, "chunks": counted.chunks})
    return {
        "rows": rows,
        "theme": theme,
        "total": len(form.parsed.rows),
        "chunk_tokens": CHUNK_TOKENS,
        "errors": _errors_by_label(form),
    }


# The editor's fields whose error lists the live preview replaces (template_edit.html, live=True).
LIVE_FIELDS = (
    "name",
    "csv_file",
    "csv_text",
    "base_prompt",
    "prompt_template",
    "style_suffix",
    "negative_prompt",
    "example_theme",
    "width",
    "height",
    "steps",
    "guidance_scale",
)


@require_POST
@role_required(GENERATE)
def template_preview(request: HttpRequest) -> HttpResponse:
    """The editor's live preview (HTMX): a fragment, 200 even when it shows the form's errors;
    every live field's error list comes with it (emptied when the field is fine now)."""
    form = TemplateEditForm(request.POST, loras=list(lora_list()))
    preview = _preview_context(form)
    preview["live_errors"] = [(form[name].auto_id, form.errors.get(name, [])) for name in LIVE_FIELDS]
    return render(request, "generation/_template_preview.html", {"preview": preview})
