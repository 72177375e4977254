"""Page forms for generation: they check types and ranges; the services own every other rule.

A service's ApplicationError carries ``fields``; :func:`imagineer.errors.form_add_application_error`
puts each message next to the field it names, in the service's own words.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from generation.engine.schedulers import SCHEDULERS
from generation.forms_loras import LoraPickerMixin
from generation.models import (
    GUIDANCE_MAX,
    GUIDANCE_MIN,
    LORA_WEIGHT_MAX,
    LORA_WEIGHT_MIN,
    SIZE_MAX,
    SIZE_MIN,
    STEPS_MAX,
    STEPS_MIN,
    BatchTemplate,
    Lora,
)
from generation.services.jobs import SEED_MAX

SEED_POLICIES = [
    ("random", "Random per image"),
    ("fixed", "Same for all"),
    ("increment", "Seed, seed+1, …"),
]


def _weight_field(label: str, *, required: bool, initial: Decimal | None = None) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        initial=initial,
        min_value=LORA_WEIGHT_MIN,
        max_value=LORA_WEIGHT_MAX,
        max_digits=4,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )


class RunStartForm(forms.Form):
    """Start a batch run of one template: a theme, an album name and optional overrides."""

    theme = forms.CharField(
        max_length=500,
        required=False,
        help_text="Shared by every image, placed between the base prompt and the row text. Empty: no theme at all.",
    )
    album_name = forms.CharField(max_length=200, required=False, help_text="Empty: named after the template and theme.")
    style_suffix = forms.CharField(
        max_length=settings.IMAGINEER_MAX_PROMPT_CHARS,
        required=False,
        help_text="Replaces the template's style suffix for this run; empty: the template's.",
    )
    steps = forms.IntegerField(required=False, min_value=STEPS_MIN, max_value=STEPS_MAX)
    guidance_scale = forms.FloatField(
        required=False,
        min_value=GUIDANCE_MIN,
        max_value=GUIDANCE_MAX,
        label="Guidance",
        widget=forms.NumberInput(attrs={"step": "0.5"}),
    )
    width = forms.IntegerField(
        required=False, min_value=SIZE_MIN, max_value=SIZE_MAX, widget=forms.NumberInput(attrs={"step": 8})
    )
    height = forms.IntegerField(
        required=False, min_value=SIZE_MIN, max_value=SIZE_MAX, widget=forms.NumberInput(attrs={"step": 8})
    )
    seed_policy = forms.ChoiceField(choices=SEED_POLICIES, initial="random", label="Seeds")
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=SEED_MAX, help_text="For “same” and “seed+1”; empty: picked for you."
    )
    try_mode = forms.ChoiceField(
        label="Rows",
        required=False,
        choices=[("all", "All rows"), ("first", "The first N"), ("sample", "N at random"), ("rows", "These rows")],
        initial="all",
        help_text="Try a few first; “Complete the deck” on the deck page makes the rest into the same album.",
    )
    try_count = forms.IntegerField(label="N", required=False, min_value=1)
    try_rows = forms.CharField(
        label="Row numbers", required=False, max_length=2000, help_text="e.g. 1, 3, 5-7 (as numbered below)."
    )

    def __init__(self, *args: Any, template: BatchTemplate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        # A placeholder that looked like a value made an empty theme look filled in: say what empty means.
        example = template.example_theme or "art nouveau"
        self.fields["theme"].widget.attrs["placeholder"] = f"Empty: no theme (try e.g. “{example}”)"
        if template.slug:
            from django.urls import reverse

            # The rows' prompts below follow the theme as it is typed.
            self.fields["theme"].widget.attrs.update(
                {
                    "hx-get": reverse("generation:template-rows", args=[template.slug]),
                    "hx-trigger": "input changed delay:300ms",
                    "hx-target": "#template-rows",
                    "hx-swap": "outerHTML",
                }
            )
        for name in ("steps", "guidance_scale", "width", "height", "style_suffix"):
            self.fields[name].widget.attrs["placeholder"] = str(getattr(template, name))
        self.lora_fields: list[tuple[str, Lora]] = []
        for entry in template.lora_stack.all():
            field_name = f"lora_{entry.lora_id}"
            self.fields[field_name] = _weight_field(f"{entry.lora.name} weight", required=False, initial=entry.weight)
            self.fields[field_name].widget.attrs["placeholder"] = str(entry.weight)
            self.lora_fields.append((field_name, entry.lora))

    @property
    def try_fields(self) -> list[forms.BoundField]:
        return [self["try_mode"], self["try_count"], self["try_rows"]]

    def clean_try_rows(self) -> list[int] | None:
        """ "1, 3, 5-7" (row numbers from 1) as row indices from 0."""
        text = self.cleaned_data.get("try_rows", "").strip()
        if not text:
            return None
        indices: list[int] = []
        for part in text.replace(" ", "").split(","):
            low, _, high = part.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise forms.ValidationError(f"“{part}” is not a row number or a range such as 5-7.")
            start, end = int(low), int(high or low)
            if not 1 <= start <= end <= self.template.row_count:
                raise forms.ValidationError(f"Rows are numbered 1 to {self.template.row_count}; “{part}” is outside.")
            indices.extend(range(start - 1, end))
        return indices

    def rows_choice(self) -> dict[str, Any]:
        """The try-first choice in run_start's terms: {} (all), {"first": n}, {"sample": n} or {"rows": [...]}."""
        data = self.cleaned_data
        mode = data.get("try_mode") or "all"
        if mode in ("first", "sample"):
            if data.get("try_count") is None:
                self.add_error(
                    "try_count", f"Say how many rows to make ({'the first' if mode == 'first' else 'at random'})."
                )
                return {}
            return {mode: data["try_count"]}
        if mode == "rows":
            if not data.get("try_rows"):
                self.add_error("try_rows", "List the rows to make, e.g. 1, 3, 5-7.")
                return {}
            return {"rows": data["try_rows"]}
        return {}

    @property
    def override_fields(self) -> list[forms.BoundField]:
        return [
            self[name] for name in ("style_suffix", "steps", "guidance_scale", "width", "height", "seed_policy", "seed")
        ]

    @property
    def lora_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name, _ in self.lora_fields]

    def overrides(self) -> dict[str, Any]:
        """Only what the user set, in the shape run_start takes."""
        data = self.cleaned_data
        overrides: dict[str, Any] = {
            name: data[name] for name in ("steps", "guidance_scale", "width", "height") if data.get(name) is not None
        }
        if data.get("style_suffix", "").strip():
            overrides["style_suffix"] = data["style_suffix"].strip()
        if data["seed_policy"] != "random" or data.get("seed") is not None:
            overrides["seed_policy"] = data["seed_policy"]
        if data.get("seed") is not None:
            overrides["seed"] = data["seed"]
        weights = {lora.name: data[name] for name, lora in self.lora_fields if data.get(name) is not None}
        if weights:
            overrides["lora_weights"] = weights
        return overrides

    def error_aliases(self) -> dict[str, str]:
        """Service field names that belong to a differently named form field."""
        aliases = {"lora_weights": self.lora_fields[0][0]} if self.lora_fields else {}
        aliases.update(first="try_count", sample="try_count", rows="try_rows")
        aliases.update({f"lora_weights.{lora.name}": name for name, lora in self.lora_fields})
        return aliases


class GenerateForm(LoraPickerMixin, forms.Form):
    """One image: prompt, negative prompt, size, steps, seed and a LoRA stack (the picker)."""

    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="A1111 syntax: (word:1.3), (word), [word], \\( for a literal bracket, BREAK, <lora:name:0.8>.",
    )
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
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
    seed = forms.IntegerField(
        required=False, min_value=0, max_value=SEED_MAX, help_text="Empty: a random seed (always recorded)."
    )
    scheduler = forms.ChoiceField(
        label="Sampler",
        required=False,
        choices=[(name, f"{spec.sampler_label}, {spec.schedule_type}") for name, spec in SCHEDULERS.items()],
    )

    def __init__(self, *args: Any, loras: list[Lora], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scheduler"].initial = settings.IMAGINEER_SCHEDULER
        self.lora_fields: list[tuple[str, Lora]] = []
        for lora in loras:
            field_name = f"lora_{lora.pk}"
            self.fields[field_name] = _weight_field(lora.name, required=False)
            self.fields[field_name].widget.attrs["placeholder"] = f"off (default {lora.default_weight})"
            self.lora_fields.append((field_name, lora))

    @property
    def setting_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in ("width", "height", "steps", "guidance_scale", "seed", "scheduler")]

    @property
    def lora_bound_fields(self) -> list[forms.BoundField]:
        return [self[name] for name, _ in self.lora_fields]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        self.lora_fit_check(cleaned)
        return cleaned

    def loras(self) -> list[tuple[Lora, Decimal]]:
        return [
            (lora, self.cleaned_data[name])
            for name, lora in self.lora_fields
            if self.cleaned_data.get(name) is not None
        ]

    def error_aliases(self) -> dict[str, str]:
        return {"loras": self.lora_fields[0][0]} if self.lora_fields else {}
