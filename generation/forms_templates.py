"""The template editor's form: the admin's checks and messages (csv_parse, template_validate),
run before saving and by the live preview, with the LoRA stack picker."""

from __future__ import annotations

from typing import Any

from django import forms

from generation.forms_loras import LoraPickerMixin
from generation.models import GUIDANCE_MAX, GUIDANCE_MIN, SIZE_MAX, SIZE_MIN, STEPS_MAX, STEPS_MIN, BatchTemplate, Lora
from generation.services.templates import ParsedCsv, csv_parse, csv_render, size_validate, template_validate
from imagineer.errors import ApplicationError, form_add_application_error

# A template's rows are read into memory whole; a CSV of this size already holds far more rows
# than IMAGINEER_MAX_TEMPLATE_ROWS allows.
CSV_MAX_BYTES = 5 * 1024 * 1024
PROMPT_FIELDS = ["base_prompt", "prompt_template", "style_suffix", "negative_prompt", "example_theme"]


class TemplateEditForm(LoraPickerMixin, forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    csv_file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="Upload a CSV (UTF-8, header line first) to replace the rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    csv_text = forms.CharField(
        required=False,
        label="Rows as CSV",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "data-rows-source": ""}),
        help_text="Header line first; paste from a spreadsheet saved as CSV. Ignored when a CSV file is uploaded.",
    )
    base_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    prompt_template = forms.CharField(
        label="Row text",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="With {column} placeholders; {{ and }} are literal braces.",
    )
    style_suffix = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    example_theme = forms.CharField(
        required=False, max_length=300, help_text="Shown as the example on the template page."
    )
    width = forms.IntegerField(
        initial=512, min_value=SIZE_MIN, max_value=SIZE_MAX, widget=forms.NumberInput(attrs={"step": 8})
    )
    height = forms.IntegerField(
        initial=512, min_value=SIZE_MIN, max_value=SIZE_MAX, widget=forms.NumberInput(attrs={"step": 8})
    )
    steps = forms.IntegerField(initial=25, min_value=STEPS_MIN, max_value=STEPS_MAX)
    guidance_scale = forms.FloatField(
        initial=8.0,
        min_value=GUIDANCE_MIN,
        max_value=GUIDANCE_MAX,
        label="Guidance",
        widget=forms.NumberInput(attrs={"step": "0.5"}),
    )
    preview_theme = forms.CharField(
        label="Preview with the theme",
        required=False,
        max_length=500,
        help_text="Only for the preview below; empty: the example theme.",
    )

    def __init__(self, *args: Any, loras: list[Lora], template: BatchTemplate | None = None, **kwargs: Any) -> None:
        if template is not None and not kwargs.get("initial") and not args:
            kwargs["initial"] = template_initial(template)
        super().__init__(*args, **kwargs)
        weights = {entry.lora_id: entry.weight for entry in template.lora_stack.all()} if template else {}
        self.lora_fields_add(loras, weights)
        self.parsed: ParsedCsv | None = None

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        upload = cleaned.get("csv_file")
        rows_field = "csv_file" if upload else "csv_text"
        try:
            if upload and upload.size > CSV_MAX_BYTES:
                raise ApplicationError(
                    "CSV too large.",
                    fields={
                        "csv_file": [
                            f"The CSV is {upload.size / 1024**2:.1f} MiB; the limit is {CSV_MAX_BYTES // 1024**2} MiB. "
                            "Split it into smaller templates."
                        ]
                    },
                )
            if upload:
                self.parsed = csv_parse(upload.read(), field="csv_file")
            elif cleaned.get("csv_text", "").strip():
                self.parsed = csv_parse(cleaned["csv_text"], field="csv_text")
            else:
                raise ApplicationError(
                    "Upload a CSV file or write the rows.",
                    fields={"csv_text": ["Upload a CSV file or write the rows as CSV text."]},
                )
        except ApplicationError as exc:
            form_add_application_error(self, exc)
            return cleaned
        if "width" in cleaned and "height" in cleaned:
            try:
                size_validate(width=cleaned["width"], height=cleaned["height"])
            except ApplicationError as exc:
                form_add_application_error(self, exc)
        try:
            template_validate(
                columns=self.parsed.columns,
                rows=self.parsed.rows,
                base_prompt=cleaned.get("base_prompt", ""),
                prompt_template=cleaned.get("prompt_template", ""),
                style_suffix=cleaned.get("style_suffix", ""),
                example_theme=cleaned.get("example_theme", ""),
            )
        except ApplicationError as exc:
            # Problems in the rows belong to the box the rows came from.
            form_add_application_error(self, exc, aliases={"csv_file": rows_field})
        self.lora_fit_check(cleaned)
        return cleaned

    @property
    def prompt_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in PROMPT_FIELDS]

    @property
    def setting_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("width", "height", "steps", "guidance_scale")]


def template_initial(template: BatchTemplate) -> dict[str, Any]:
    initial: dict[str, Any] = {
        name: getattr(template, name)
        for name in ("name", "description", *PROMPT_FIELDS, "width", "height", "steps", "guidance_scale")
    }
    initial["csv_text"] = csv_render(template.columns, template.csv_data) if template.columns else ""
    return initial
