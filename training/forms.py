from __future__ import annotations

from typing import Any

from django import forms

from training import models as limits
from training.models import TrainingRun
from training.services.runs import PARAMETER_HELP, training_defaults


class TrainingStartForm(forms.Form):
    """The start-training form; fields carry the same help text as the API. Ranges are checked
    here for early feedback and again by the service."""

    name = forms.CharField(max_length=200, help_text="The LoRA's name in the library.")
    trigger_word = forms.CharField(max_length=100, help_text=PARAMETER_HELP["trigger_word"])
    base_model = forms.CharField(
        max_length=500, required=False, help_text="The generator's model; training uses it as the frozen base."
    )
    caption_source = forms.ChoiceField(
        choices=TrainingRun.CaptionSource.choices, help_text=PARAMETER_HELP["caption_source"]
    )
    sample_prompts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=PARAMETER_HELP["sample_prompts"] + " Empty: the trigger word and the first caption.",
    )
    max_steps = forms.IntegerField(
        min_value=limits.STEPS_MIN, max_value=limits.STEPS_MAX, help_text=PARAMETER_HELP["max_steps"]
    )
    save_every = forms.IntegerField(min_value=1, max_value=limits.STEPS_MAX, help_text=PARAMETER_HELP["save_every"])
    learning_rate = forms.FloatField(
        min_value=limits.LEARNING_RATE_MIN,
        max_value=limits.LEARNING_RATE_MAX,
        help_text=PARAMETER_HELP["learning_rate"],
    )
    rank = forms.IntegerField(min_value=limits.RANK_MIN, max_value=limits.RANK_MAX, help_text=PARAMETER_HELP["rank"])
    alpha = forms.FloatField(min_value=0, max_value=1024, help_text=PARAMETER_HELP["alpha"])
    dropout = forms.FloatField(
        min_value=limits.DROPOUT_MIN, max_value=limits.DROPOUT_MAX, help_text=PARAMETER_HELP["dropout"]
    )
    resolution = forms.IntegerField(
        min_value=limits.RESOLUTION_MIN,
        max_value=limits.RESOLUTION_MAX,
        step_size=8,
        help_text=PARAMETER_HELP["resolution"],
    )
    batch_size = forms.IntegerField(
        min_value=limits.BATCH_SIZE_MIN, max_value=limits.BATCH_SIZE_MAX, help_text=PARAMETER_HELP["batch_size"]
    )
    gradient_accumulation = forms.IntegerField(
        min_value=limits.ACCUMULATION_MIN,
        max_value=limits.ACCUMULATION_MAX,
        help_text=PARAMETER_HELP["gradient_accumulation"],
    )
    seed = forms.IntegerField(
        min_value=0, required=False, help_text=PARAMETER_HELP["seed"] + " Empty: a random seed (recorded)."
    )
    mixed_precision = forms.BooleanField(required=False, help_text=PARAMETER_HELP["mixed_precision"])

    PARAMETER_FIELDS = (
        "max_steps",
        "save_every",
        "learning_rate",
        "rank",
        "alpha",
        "dropout",
        "resolution",
        "batch_size",
        "gradient_accumulation",
        "seed",
        "mixed_precision",
    )

    def __init__(self, *args: Any, album_name: str = "", **kwargs: Any) -> None:
        defaults = training_defaults()
        initial = {name: defaults.get(name) for name in self.base_fields}
        initial["name"] = f"{album_name} LoRA".strip() if album_name else ""
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)

    def parameters(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in self.PARAMETER_FIELDS}
