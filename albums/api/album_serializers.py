"""Shapes of albums and images in the API (read-only: albums change through pages and admin)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from albums.models import Album, Image
from albums.selectors import AlbumWithSummary
from imagineer.api_common import object_url
from labeling.models import Label


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "label_type", "text", "source", "source_model", "prompt_type", "created_at"]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    """An image; ``labels`` only when asked for with ``?include=labels``."""

    url = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    # Blank unless the image was scraped or labelled: documented as such, not as URLs/enums only.
    source_url = serializers.CharField(read_only=True, allow_blank=True, help_text="Scraped images: the file's URL.")
    source_page_url = serializers.CharField(read_only=True, allow_blank=True, help_text="Scraped images: the page.")
    nsfw_rating = serializers.ChoiceField(
        choices=Image.NsfwRating.choices, read_only=True, allow_blank=True, help_text="Blank until labelled."
    )
    # Not read-only so that the schema shows it as optional: it is there only with ?include=labels.
    labels = LabelSerializer(many=True, required=False, help_text="With `?include=labels` only.")

    class Meta:
        model = Image
        fields = [
            "id",
            "url",
            "file_url",
            "thumbnail_url",
            "title",
            "width",
            "height",
            "file_size",
            "sha256",
            "prompt",
            "negative_prompt",
            "source_url",
            "source_page_url",
            "is_nsfw",
            "nsfw_rating",
            "created_at",
            "labels",
        ]
        read_only_fields = [name for name in fields if name != "labels"]

    def __init__(self, *args: Any, include_labels: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not include_labels:
            # With it, labels come from the prefetch the view set up: one query for all rows.
            self.fields.pop("labels")

    def get_url(self, obj: Image) -> str:
        return object_url(self, "api:image-detail", obj.pk)

    def get_file_url(self, obj: Image) -> str:
        return object_url(self, "api:image-file", obj.pk)

    def get_thumbnail_url(self, obj: Image) -> str:
        return object_url(self, "api:image-thumbnail", obj.pk)


class ImageDetailSerializer(ImageSerializer):
    """One image with its generation recipe; labels with ``?include=labels``."""

    album_ids = serializers.SerializerMethodField()

    class Meta(ImageSerializer.Meta):
        fields = [*ImageSerializer.Meta.fields, "recipe", "album_ids"]
        read_only_fields = [name for name in fields if name != "labels"]

    def get_album_ids(self, obj: Image) -> list[int]:
        return [membership.album_id for membership in obj.memberships.all()]


class AlbumImageSerializer(ImageSerializer):
    """An image as a member of an album: with its position there."""

    position = serializers.IntegerField(read_only=True)

    class Meta(ImageSerializer.Meta):
        fields = ["position", *ImageSerializer.Meta.fields]
        read_only_fields = [name for name in fields if name != "labels"]


class AlbumSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    image_count = serializers.IntegerField(read_only=True)
    cover_image_id = serializers.IntegerField(read_only=True, allow_null=True)
    cover_thumbnail_url = serializers.SerializerMethodField()
    generation_run_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Album
        fields = [
            "id",
            "url",
            "name",
            "slug",
            "description",
            "source_type",
            "is_public",
            "image_count",
            "cover_image_id",
            "cover_thumbnail_url",
            "generation_run_id",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, obj: Album) -> str:
        return object_url(self, "api:album-detail", obj.pk)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_cover_thumbnail_url(self, obj: AlbumWithSummary) -> str | None:
        if not obj.cover_image_id:
            return None
        return object_url(self, "api:image-thumbnail", obj.cover_image_id)


class AlbumImagesPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AlbumImageSerializer(many=True)


class AlbumDetailSerializer(AlbumSerializer):
    """An album with one page of its images, in album order (``?page=``, ``?page_size=``)."""

    images = AlbumImagesPageSerializer(read_only=True)

    class Meta(AlbumSerializer.Meta):
        fields = [*AlbumSerializer.Meta.fields, "images"]
        read_only_fields = fields


class LegacyBatchSerializer(serializers.Serializer):
    """The original ``/api/batches`` entry: a batch output folder, here a batch_generation album."""

    batch_id = serializers.CharField(help_text="The album's slug (the original's output folder name).")
    album_id = serializers.IntegerField()
    name = serializers.CharField()
    image_count = serializers.IntegerField()
    created = serializers.DateTimeField()
    path = serializers.CharField(help_text="The folder under outputs/, for display only.")


class LegacyBatchImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    filename = serializers.CharField()
    relative_path = serializers.CharField()
    url = serializers.URLField()
    thumbnail_url = serializers.URLField()
    created = serializers.DateTimeField()
    metadata = serializers.DictField()


class LegacyBatchListSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    batches = LegacyBatchSerializer(many=True)


class LegacyBatchDetailSerializer(LegacyBatchSerializer):
    images = LegacyBatchImageSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
