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
        super().clean()
        cleaned = self.cleaned_data
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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Several files in one field (Django's documented pattern for ``multiple``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        items = [item for item in (data if isinstance(data, list | tuple) else [data]) if item]
        if not items:
            return single(None, initial)  # "This field is required." unless the field is optional
        return [single(item, initial) for item in items]


class AlbumUploadForm(forms.Form):
    images = MultipleImageField(
        label="Images",
        help_text="JPEG, PNG, GIF, WebP, BMP or AVIF; the same size and pixel limits as scraping. Duplicates are skipped.",
    )


class AlbumNewForm(AlbumUploadForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    field_order = ["name", "description", "images"]


class ImageLabelsForm(forms.Form):
    caption = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(required=False, max_length=2000, help_text="Comma-separated.")

    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class AlbumImagesActionForm(forms.Form):
    """What to do with the images ticked on an album page."""

    ACTIONS = (
        ("remove", "Remove from this album"),
        ("add", "Add to another album"),
        ("new_album", "New album from these"),
        ("delete", "Delete images"),
    )

    action = forms.ChoiceField(choices=ACTIONS)
    images = forms.TypedMultipleChoiceField(
        coerce=int, choices=(), error_messages={"required": "Tick one or more images first."}
    )
    target = forms.TypedChoiceField(coerce=int, required=False, label="Album", empty_value=None, choices=())
    name = forms.CharField(required=False, max_length=200, label="New album's name")

    def __init__(self, *args: Any, image_ids: list[int], targets: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        images_field = self.fields["images"]
        assert isinstance(images_field, forms.TypedMultipleChoiceField)
        images_field.choices = [(pk, str(pk)) for pk in image_ids]
        target_field = self.fields["target"]
        assert isinstance(target_field, forms.TypedChoiceField)
        target_field.choices = [("", "—"), *targets]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("action") == "add" and not cleaned.get("target"):
            self.add_error("target", "Choose the album to add the images to.")
        if cleaned.get("action") == "new_album" and not (cleaned.get("name") or "").strip():
            self.add_error("name", "Give the new album a name.")
        return cleaned
