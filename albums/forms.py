"""Page forms of the albums app: search, upload, curation, labels. Services own the rules."""

from __future__ import annotations

from typing import Any

from django import forms

from albums.search import NSFW_CHOICES, QUERY_MAX, ImageQuery
from generation.services.jobs import SEED_MAX


class ImageSearchForm(forms.Form):
    q = forms.CharField(
        label="Words",
        required=False,
        max_length=QUERY_MAX,
        help_text="Matched against prompts, card titles, captions and tags. Quotes for a phrase, -word to exclude.",
    )
    lora = forms.CharField(label="LoRA", required=False, max_length=200)
    template = forms.CharField(required=False, max_length=200)
    seed = forms.IntegerField(required=False, min_value=0, max_value=SEED_MAX)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    nsfw = forms.ChoiceField(label="NSFW", choices=NSFW_CHOICES, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", f"“To” ({end}) is before “From” ({start}); swap them.")
        return cleaned

    def image_query(self) -> ImageQuery:
        data = self.cleaned_data
        return ImageQuery(
            text=data.get("q") or "",
            lora=data.get("lora") or "",
            template=data.get("template") or "",
            seed=data.get("seed"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            nsfw=data.get("nsfw") or "any",
        )
