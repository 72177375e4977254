from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import models
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from albums.models import Album, AlbumImage, Image, ScrapeJob
from albums.services.curation import album_add_images, album_remove_images, image_delete, image_set_nsfw
from imagineer.admin import CuratorModelAdmin
from labeling.models import Label

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class AlbumTotal(TypedDict):
    image_total: int


def _thumbnail(image_id: int | None, size: int = 128) -> str:
    if not image_id:
        return "—"
    url = reverse("albums:image-thumbnail", args=[image_id])
    # Sized by class (static/css/admin.css): the Content-Security-Policy refuses style attributes.
    return format_html(
        '<img src="{}?size={}" alt="" loading="lazy" class="admin-thumb admin-thumb-{}">', url, size, size
    )


class AlbumImageInline(admin.TabularInline):
    model = AlbumImage
    extra = 0
    fields = ["position", "thumbnail", "image"]
    readonly_fields = ["thumbnail"]
    raw_id_fields = ["image"]
    ordering = ["position", "id"]

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description="Image")
    def thumbnail(self, obj: AlbumImage) -> str:
        return _thumbnail(obj.image_id, 128)


@admin.register(Album)
class AlbumAdmin(CuratorModelAdmin):
    list_display = ["name", "source_type", "image_count", "is_public", "created_by", "created_at"]
    list_filter = ["source_type", "is_public"]
    search_fields = ["name", "description"]
    prepopulated_fields = {"slug": ["name"]}
    list_select_related = ["created_by"]
    inlines = [AlbumImageInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Album]:
        return super().get_queryset(request).annotate(image_total=Count("memberships"))

    @admin.display(description="Images", ordering="image_total")
    def image_count(self, obj: WithAnnotations[Album, AlbumTotal]) -> int:
        return obj.image_total


class AlbumActionForm(ActionForm):
    album = forms.ModelChoiceField(
        queryset=Album.objects.order_by("name"),
        required=False,
        label="Album",
        help_text="For 'add to album' and 'remove from album'.",
    )


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0
    fields = ["label_type", "text", "source", "source_model", "prompt_type", "created_at"]
    readonly_fields = ["created_at"]


class AlbumFilter(admin.SimpleListFilter):
    title = "album"
    parameter_name = "album"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Album.objects.order_by("name").values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> QuerySet[Image]:
        album_id = self.value()
        return queryset.filter(memberships__album_id=album_id) if album_id else queryset


class SourceTypeFilter(admin.SimpleListFilter):
    title = "album source type"
    parameter_name = "source_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Album.SourceType.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Image]) -> QuerySet[Image]:
        return queryset.filter(memberships__album__source_type=self.value()).distinct() if self.value() else queryset


@admin.register(Image)
class ImageAdmin(CuratorModelAdmin):
    list_display = ["thumbnail", "__str__", "size_display", "nsfw_rating", "is_nsfw", "created_at"]
    list_display_links = ["thumbnail", "__str__"]
    list_filter = [AlbumFilter, SourceTypeFilter, "is_nsfw", "nsfw_rating"]
    search_fields = ["prompt", "title", "labels__text", "source_url"]
    readonly_fields = [
        "preview",
        "file",
        "width",
        "height",
        "file_size",
        "sha256",
        "perceptual_hash",
        "recipe",
        "created_at",
    ]
    inlines = [LabelInline]
    action_form = AlbumActionForm
    actions = ["mark_nsfw", "unmark_nsfw", "add_to_album", "remove_from_album", "delete_with_files"]
    list_per_page = 60
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    class Media:
        css = {"all": ["css/admin.css"]}

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Image], search_term: str):
        results, _may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return results.distinct(), False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="")
    def thumbnail(self, obj: Image) -> str:
        return _thumbnail(obj.pk, 128)

    @admin.display(description="Image")
    def preview(self, obj: Image) -> str:
        return _thumbnail(obj.pk, 512)

    @admin.display(description="Size")
    def size_display(self, obj: Image) -> str:
        return f"{obj.width}×{obj.height}"

    @admin.action(description="Mark selected images NSFW")
    def mark_nsfw(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = image_set_nsfw(images=queryset, is_nsfw=True)
        self.message_user(request, f"Marked {count} image(s) NSFW.", messages.SUCCESS)

    @admin.action(description="Unmark NSFW on selected images")
    def unmark_nsfw(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = image_set_nsfw(images=queryset, is_nsfw=False)
        self.message_user(request, f"Unmarked NSFW on {count} image(s).", messages.SUCCESS)

    def _action_album(self, request: HttpRequest) -> Album | None:
        field = AlbumActionForm.base_fields["album"]
        try:
            album = field.clean(request.POST.get("album"))
        except forms.ValidationError:
            album = None
        if album is None:
            self.message_user(
                request, "Choose an album in the 'Album' box next to the action, then run it again.", messages.ERROR
            )
        return album

    @admin.action(description="Add selected images to album")
    def add_to_album(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        if album := self._action_album(request):
            added = album_add_images(album=album, images=queryset.order_by("created_at", "id"))
            self.message_user(request, f"Added {added} image(s) to {album}.", messages.SUCCESS)

    @admin.action(description="Remove selected images from album")
    def remove_from_album(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        if album := self._action_album(request):
            removed = album_remove_images(album=album, images=queryset)
            self.message_user(request, f"Removed {removed} image(s) from {album}.", messages.SUCCESS)

    @admin.action(description="Delete selected images and their files", permissions=["delete"])
    def delete_with_files(self, request: HttpRequest, queryset: QuerySet[Image]) -> None:
        count = 0
        for image in queryset:
            image_delete(image=image)
            count += 1
        self.message_user(request, f"Deleted {count} image(s) and their files.", messages.SUCCESS)

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        image_delete(image=obj)


@admin.register(ScrapeJob)
class ScrapeJobAdmin(CuratorModelAdmin):
    """Scrapes are started from the pages, API or command line; the admin watches them."""

    list_display = [
        "id",
        "album",
        "status",
        "pages_fetched",
        "images_downloaded",
        "images_skipped",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["album__name", "start_urls", "created_by__username"]
    list_select_related = ["album", "created_by"]
    readonly_fields = [field.name for field in ScrapeJob._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
