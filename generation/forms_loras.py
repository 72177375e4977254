"""Page forms of the LoRA library: upload and edit. The services own the rules and their messages."""

from __future__ import annotations

from django import forms

from generation.models import LORA_WEIGHT_MAX, LORA_WEIGHT_MIN, Lora
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
    def for_lora(cls, lora: Lora, data: object = None) -> LoraEditForm:
        initial = {
            "name": lora.name,
            "trigger_words": lora.trigger_words,
            "default_weight": lora.default_weight,
            "description": lora.description,
        }
        return cls(data, initial=initial) if data is not None else cls(initial=initial)
