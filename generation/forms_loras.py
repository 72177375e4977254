"""Page forms of the LoRA library: upload and edit. The services own the rules and their messages."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django import forms

from generation.engine.lora_files import lora_fit_error
from generation.models import LORA_WEIGHT_MAX, LORA_WEIGHT_MIN, Lora
from generation.selectors import model_base_configured
from generation.services.loras import NAME_MAX, TRIGGER_WORDS_MAX


class LoraUploadForm(forms.Form):
    file = forms.FileField(
        label="LoRA file",
        help_text="A .safetensors LoRA, up to 2 GiB. Pickle files (.ckpt, .pt, .bin) are refused: they can run code.",
        widget=forms.ClearableFileInput(attrs={"accept": ".safetensors"}),
    )
    name = forms.CharField(max_length=NAME_MAX, required=False, help_text="Empty: named after the file.")


class LoraEditForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX)
    trigger_words = forms.CharField(
        max_length=TRIGGER_WORDS_MAX,
        required=False,
        help_text="Comma-separated words the LoRA was trained on; offered for insertion into prompts.",
    )
    default_weight = forms.DecimalField(
        min_value=LORA_WEIGHT_MIN,
        max_value=LORA_WEIGHT_MAX,
        max_digits=4,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    @classmethod
    def for_lora(cls, lora: Lora, data: Mapping[str, Any] | None = None) -> LoraEditForm:
        initial = {
            "name": lora.name,
            "trigger_words": lora.trigger_words,
            "default_weight": lora.default_weight,
            "description": lora.description,
        }
        return cls(data, initial=initial) if data is not None else cls(initial=initial)


class LoraPickerMixin:
    """The LoRA stack picker's fields: one optional weight per LoRA (empty: not in the stack).

    ``lora_fields`` pairs each field name with its LoRA; ``picker_rows`` is what
    ``generation/_lora_picker.html`` renders (static/js/lora-picker.js adds the search box,
    the weight sliders and the trigger-word buttons). A LoRA made for another base model than
    the loaded one is refused beside its weight, before anything is saved or queued.
    """

    fields: dict[str, forms.Field]
    lora_fields: list[tuple[str, Lora]]

    def lora_fields_add(self, loras: list[Lora], weights: dict[int, Any] | None = None) -> None:
        from generation.forms import _weight_field

        weights = weights or {}
        self.lora_fields = []
        for lora in loras:
            name = f"lora_{lora.pk}"
            self.fields[name] = _weight_field(f"{lora.name} weight", required=False, initial=weights.get(lora.pk))
            self.fields[name].widget.attrs.update(
                {"placeholder": f"off (default {lora.default_weight})", "data-default-weight": str(lora.default_weight)}
            )
            self.lora_fields.append((name, lora))

    def lora_fit_check(self, cleaned: dict[str, Any]) -> None:
        base = model_base_configured()
        for name, lora in self.lora_fields:
            if cleaned.get(name) is None:
                continue
            problem = lora_fit_error(lora_name=lora.name, lora_base=lora.base, model_base=base)
            if problem:
                self.add_error(name, problem)  # type: ignore[attr-defined]

    def picker_rows(self) -> list[dict[str, Any]]:
        base = model_base_configured()
        return [
            {
                "field": self[name],  # type: ignore[index]
                "lora": lora,
                "unfit": lora_fit_error(lora_name=lora.name, lora_base=lora.base, model_base=base) or "",
            }
            for name, lora in self.lora_fields
        ]

    def lora_stack_chosen(self) -> list[tuple[Lora, Decimal]]:
        cleaned: dict[str, Any] = self.cleaned_data  # type: ignore[attr-defined]
        return [(lora, cleaned[name]) for name, lora in self.lora_fields if cleaned.get(name) is not None]
