from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from generation.models import (
    BatchGenerationRun,
    BatchTemplate,
    BatchTemplateLora,
    DeckComparison,
    DeckSlot,
    GenerationJob,
    Lora,
)
from generation.services.decks import title_template_validate
from generation.services.templates import csv_parse, csv_render, template_preview, template_validate
from imagineer.admin import CuratorModelAdmin
from imagineer.errors import ApplicationError, form_add_application_error


class BatchTemplateForm(forms.ModelForm):
    """Rows come from an uploaded CSV file or from the editable CSV text, never raw JSON."""

    csv_file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="Upload a CSV (UTF-8, header line first) to replace the rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    csv_text = forms.CharField(
        required=False,
        label="Rows as CSV",
        widget=forms.Textarea(attrs={"rows": 12, "cols": 120, "spellcheck": "false", "class": "vLargeTextField"}),
        help_text="Edit the rows here, header line first. Ignored when a CSV file is uploaded.",
    )

    class Meta:
        model = BatchTemplate
        fields = [
            "name",
            "slug",
            "description",
            "is_builtin",
            "base_prompt",
            "prompt_template",
            "style_suffix",
            "negative_prompt",
            "example_theme",
            "title_template",
            "width",
            "height",
            "steps",
            "guidance_scale",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.columns:
            self.fields["csv_text"].initial = csv_render(self.instance.columns, self.instance.csv_data)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        upload = cleaned.get("csv_file")
        try:
            if upload:
                parsed = csv_parse(upload.read(), field="csv_file")
            elif cleaned.get("csv_text", "").strip():
                parsed = csv_parse(cleaned["csv_text"], field="csv_text")
            else:
                raise ApplicationError(
                    "Upload a CSV file or write the rows.",
                    fields={"csv_file": ["Upload a CSV file or write the rows as CSV text."]},
                )
        except ApplicationError as exc:
            form_add_application_error(self, exc)
            return cleaned
        self.instance.columns = parsed.columns
        self.instance.csv_data = parsed.rows
        try:
            title_template_validate(cleaned.get("title_template", ""), parsed.columns)
        except ApplicationError as exc:
            form_add_application_error(self, exc)
        if "prompt_template" in cleaned:
            try:
                template_validate(
                    columns=parsed.columns,
                    rows=parsed.rows,
                    base_prompt=cleaned.get("base_prompt", ""),
                    prompt_template=cleaned["prompt_template"],
                    style_suffix=cleaned.get("style_suffix", ""),
                    example_theme=cleaned.get("example_theme", ""),
                )
            except ApplicationError as exc:
                # Problems in the rows belong to the CSV text box unless a file was uploaded.
                form_add_application_error(self, exc, aliases={} if upload else {"csv_file": "csv_text"})
        return cleaned


class BatchTemplateLoraInline(admin.TabularInline):
    model = BatchTemplateLora
    extra = 0
    fields = ["position", "lora", "weight"]
    ordering = ["position", "id"]
    autocomplete_fields = ["lora"]


@admin.register(BatchTemplate)
class BatchTemplateAdmin(CuratorModelAdmin):
    form = BatchTemplateForm
    list_display = ["name", "row_count_display", "size_display", "steps", "is_builtin", "updated_at"]
    list_filter = ["is_builtin"]
    search_fields = ["name", "description", "prompt_template"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["columns_display", "prompt_preview"]
    inlines = [BatchTemplateLoraInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "is_builtin"]}),
        ("Rows", {"fields": ["csv_file", "csv_text", "columns_display"]}),
        (
            "Prompt",
            {
                "fields": [
                    "base_prompt",
                    "prompt_template",
                    "style_suffix",
                    "negative_prompt",
                    "example_theme",
                    "title_template",
                    "prompt_preview",
                ],
                "description": "Prompts are built as [base prompt], [theme], [row via template], [style suffix].",
            },
        ),
        ("Generation", {"fields": [("width", "height"), ("steps", "guidance_scale")]}),
    ]

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description="Rows")
    def row_count_display(self, obj: BatchTemplate) -> int:
        return obj.row_count

    @admin.display(description="Size")
    def size_display(self, obj: BatchTemplate) -> str:
        return f"{obj.width}×{obj.height}"

    @admin.display(description="Columns")
    def columns_display(self, obj: BatchTemplate) -> str:
        if not obj.columns:
            return "—"
        return format_html_join(" ", "<code>{{{}}}</code>", ((name,) for name in obj.columns))

    @admin.display(description="Preview (example theme, first rows)")
    def prompt_preview(self, obj: BatchTemplate) -> str:
        if not obj.pk or not obj.csv_data:
            return "Save the template to see its prompts."
        rows = format_html_join("", "<li><strong>Row {}</strong>: {}</li>", template_preview(obj, limit=5))
        return format_html("<ol class='prompt-preview'>{}</ol>", rows)  # styled by static/css/admin.css

    def save_model(self, request: HttpRequest, obj: BatchTemplate, form: forms.ModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class LoraUploadForm(forms.ModelForm):
    """Adding a LoRA means uploading its .safetensors: base, rank and sha256 are read from the file."""

    upload = forms.FileField(
        label="LoRA file",
        help_text="A .safetensors LoRA (pickled .ckpt/.pt files are refused: they can run code when loaded).",
        widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}),
    )

    # Who uploads: set per request on a subclass made by LoraAdmin.get_form.
    uploaded_by: Any = None

    class Meta:
        model = Lora
        fields = ["upload", "name", "trigger_words", "default_weight", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "Leave empty to use the file name."

    def clean(self) -> dict[str, Any]:
        from generation.services.loras import lora_upload

        super().clean()
        cleaned = self.cleaned_data
        if self.errors or not cleaned.get("upload"):
            return cleaned
        try:
            # The admin wraps the whole add view in a transaction: a later error rolls the row back.
            lora = lora_upload(
                uploaded_file=cleaned["upload"],
                name=cleaned.get("name") or None,
                created_by=self.uploaded_by,
            )
        except ApplicationError as exc:
            form_add_application_error(self, exc, aliases={"file": "upload"}, fallback="upload")
            return cleaned
        cleaned["name"] = lora.name
        self.instance = lora
        return cleaned


@admin.register(Lora)
class LoraAdmin(CuratorModelAdmin):
    list_display = ["name", "base", "rank", "default_weight", "source", "file_size", "created_at"]
    list_filter = ["base", "source"]
    search_fields = ["name", "trigger_words", "sha256", "file"]
    readonly_fields = ["sha256", "file_size", "base", "rank", "alpha", "file", "source", "created_at", "updated_at"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs.update(form=LoraUploadForm, fields=LoraUploadForm.Meta.fields)
        form_class = super().get_form(request, obj, **kwargs)
        return type("RequestBoundForm", (form_class,), {"uploaded_by": request.user})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.readonly_fields if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        if obj is None:
            return [(None, {"fields": LoraUploadForm.Meta.fields})]
        return super().get_fieldsets(request, obj)

    def delete_model(self, request: HttpRequest, obj: Lora) -> None:
        from generation.services.loras import lora_delete

        lora_delete(lora=obj)


JOB_INLINE_FIELDS = ("row_index", "status", "seed", "prompt", "error", "result_image")


class GenerationJobInline(admin.TabularInline):
    model = GenerationJob
    extra = 0
    can_delete = False
    fields = JOB_INLINE_FIELDS
    readonly_fields = JOB_INLINE_FIELDS
    ordering = ["row_index"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BatchGenerationRun)
class BatchGenerationRunAdmin(CuratorModelAdmin):
    list_display = ["id", "template", "theme", "status", "completed_items", "failed_items", "total_items", "created_at"]
    list_filter = ["status"]
    search_fields = ["theme", "template__name", "album__name"]
    list_select_related = ["template"]
    readonly_fields = [field.name for field in BatchGenerationRun._meta.fields]
    inlines = [GenerationJobInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(GenerationJob)
class GenerationJobAdmin(CuratorModelAdmin):
    list_display = ["id", "run", "row_index", "status", "seed", "width", "height", "steps", "created_at"]
    list_filter = ["status"]
    search_fields = ["prompt"]
    readonly_fields = [field.name for field in GenerationJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class TakeInline(admin.TabularInline):
    model = GenerationJob
    fk_name = "slot"
    verbose_name = "take"
    extra = 0
    fields = ["id", "status", "seed", "strength", "init_image", "result_image", "created_at"]
    readonly_fields = ["id", "status", "seed", "strength", "init_image", "result_image", "created_at"]
    ordering = ["created_at", "id"]
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeckSlot)
class DeckSlotAdmin(CuratorModelAdmin):
    """A deck's cards: title, pick (changeable among its takes) and its takes."""

    list_display = ["album", "index", "title", "pick_display", "take_count"]
    list_select_related = ["album", "pick"]
    search_fields = ["title", "album__name"]
    readonly_fields = ["album", "index", "row", "run", "created_at"]
    fields = ["album", "index", "title", "row", "prompt_edit", "pick", "run", "created_at"]
    raw_id_fields = ["pick"]
    inlines = [TakeInline]
    ordering = ["album", "index"]

    def get_queryset(self, request: HttpRequest):
        from django.db.models import Count

        return super().get_queryset(request).annotate(take_count=Count("takes"))

    @admin.display(description="takes", ordering="take_count")
    def take_count(self, obj: DeckSlot) -> int:
        return getattr(obj, "take_count", 0)

    @admin.display(description="pick")
    def pick_display(self, obj: DeckSlot) -> str:
        return str(obj.pick) if obj.pick_id else "first take"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(DeckComparison)
class DeckComparisonAdmin(CuratorModelAdmin):
    list_display = ["name", "template", "created_by", "created_at"]
    list_select_related = ["template", "created_by"]
    readonly_fields = ["template", "variants", "created_by", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
