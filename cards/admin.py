from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from cards.models import CardDesign, FinishedCard, FinishingJob, LayoutGuide, LayoutGuideImage
from cards.services.designs import EDITABLE_FIELDS, design_copy, design_fingerprint, design_validate
from cards.services.guides import GUIDE_FIELDS, layout_guide_validate
from cards.services.jobs import design_refinish
from imagineer.admin import CuratorModelAdmin
from imagineer.errors import ApplicationError, form_add_application_error


class CardDesignForm(forms.ModelForm):
    """Runs the same validation as the services, so the admin cannot save a design that fails to render."""

    class Meta:
        model = CardDesign
        fields = ["template", "name", *EDITABLE_FIELDS[1:]]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm's private hook, absent from django-stubs
        # ModelForm copies cleaned data onto the instance in _post_clean; validate after that.
        if not self.errors and self.instance.template_id:
            try:
                design_validate(self.instance)
            except ApplicationError as exc:
                form_add_application_error(self, exc)


@admin.register(CardDesign)
class CardDesignAdmin(admin.ModelAdmin):
    form = CardDesignForm
    list_display = ["name", "template", "size_preset", "dpi", "bleed_mm", "updated_at"]
    list_filter = ["size_preset"]
    search_fields = ["name", "template__name"]
    autocomplete_fields = ["template"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    actions = ["copy_designs"]
    fieldsets = [
        (None, {"fields": ["template", "name"]}),
        (
            "Size and print",
            {
                "fields": [
                    "size_preset",
                    ("width_mm", "height_mm"),
                    "dpi",
                    ("bleed_mm", "safe_margin_mm", "corner_radius_mm"),
                ]
            },
        ),
        (
            "Art",
            {
                "fields": [("art_x_mm", "art_y_mm", "art_width_mm", "art_height_mm"), "bleed_fill", "background_color"],
                "description": "The art window in mm from the trim's top-left corner; leave all empty for the whole card.",
            },
        ),
        ("Frame", {"fields": [("frame_color", "frame_width_mm"), "frame_overlay"]}),
        (
            "Corner indices",
            {
                "fields": [
                    "index_template",
                    ("index_font", "index_size_mm"),
                    "index_color",
                    "index_color_column",
                    "index_color_map",
                ]
            },
        ),
        (
            "Title",
            {
                "fields": [
                    "title_template",
                    ("title_font", "title_size_mm", "title_color"),
                    ("title_position", "title_band_color", "title_band_opacity"),
                ]
            },
        ),
        ("Fonts", {"fields": ["font_fallbacks"]}),
        ("Back", {"fields": ["back_image", "back_color", "back_prompt"]}),
        ("Record", {"fields": ["created_by", "created_at", "updated_at"]}),
    ]

    def save_model(self, request: HttpRequest, obj: CardDesign, form: Any, change: bool) -> None:
        if not change and request.user.is_authenticated:
            obj.created_by = request.user
        before = design_fingerprint(CardDesign.objects.get(pk=obj.pk)) if change else ""
        super().save_model(request, obj, form, change)
        if change and (design_fingerprint(obj) != before or "back_prompt" in form.changed_data):
            # Finished decks follow their design: finish them again in the background.
            started = design_refinish(design=obj, created_by=request.user if request.user.is_authenticated else None)
            if started:
                self.message_user(request, f"Finishing {len(started)} deck(s) again in this design.")

    @admin.action(description="Copy the selected designs")
    def copy_designs(self, request: HttpRequest, queryset: QuerySet[CardDesign]) -> None:
        for design in queryset.select_related("template"):
            try:
                copy = design_copy(design=design, created_by=request.user)
            except ApplicationError as exc:
                self.message_user(request, f"{design}: {exc.message}", level=messages.ERROR)
            else:
                self.message_user(request, f"Copied {design.name!r} as {copy.name!r}.")


class LayoutGuideForm(forms.ModelForm):
    class Meta:
        model = LayoutGuide
        fields = ["template", *GUIDE_FIELDS]

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # ModelForm's private hook, absent from django-stubs
        if not self.errors and self.instance.template_id:
            try:
                layout_guide_validate(self.instance)
            except ApplicationError as exc:
                form_add_application_error(self, exc)


class LayoutGuideImageInline(admin.TabularInline):
    model = LayoutGuideImage
    extra = 0
    fields = ["name", "file", "width", "height"]
    readonly_fields = ["file", "width", "height"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Uploads go through layout_guide_image_add, which refuses undecodable files and bombs.
        return False


@admin.register(LayoutGuide)
class LayoutGuideAdmin(admin.ModelAdmin):
    form = LayoutGuideForm
    list_display = ["template", "kind", "mode", "strength"]
    autocomplete_fields = ["template"]
    inlines = [LayoutGuideImageInline]


@admin.register(FinishedCard)
class FinishedCardAdmin(admin.ModelAdmin):
    list_display = ["album", "design", "side", "position", "title", "updated_at"]
    list_filter = ["side"]
    search_fields = ["album__name", "design__name", "title"]
    list_select_related = ["album", "design"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FinishingJob)
class FinishingJobAdmin(CuratorModelAdmin):
    """Finishing is started from the pages, API or ``manage.py finish_deck``; the admin watches it."""

    list_display = [
        "id",
        "album",
        "design",
        "status",
        "stage",
        "progress_done",
        "progress_total",
        "attempts",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "stage"]
    search_fields = ["album__name", "design__name", "created_by__username"]
    list_select_related = ["album", "design", "created_by"]
    readonly_fields = [*(field.name for field in FinishingJob._meta.fields), "files"]

    @admin.display(description="Files")
    def files(self, job: FinishingJob) -> str:
        """The exports a finished job wrote (name: media path), and the cards it could not finish."""
        result = job.result or {}
        lines = [f"{name}: {path}" for name, path in sorted((result.get("files") or {}).items())]
        if result.get("missing"):
            lines.append(f"missing picks: {len(result['missing'])}")
        if result.get("failed"):
            lines.append(f"failed cards: {len(result['failed'])}")
        return "\n".join(lines) or "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
