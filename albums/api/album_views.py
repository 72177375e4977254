"""Albums, images, image files and the legacy ``/api/batches`` (read-only over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
import django_filters.fields
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters, generics, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from albums.api.album_serializers import (
    AlbumDetailSerializer,
    AlbumImageSerializer,
    AlbumSerializer,
    ImageDetailSerializer,
    ImageSerializer,
    LegacyBatchDetailSerializer,
    LegacyBatchListSerializer,
)
from albums.models import Album, Image
from albums.selectors import (
    AlbumWithCount,
    AlbumWithSummary,
    album_export_images,
    album_images_in_order,
    albums_annotated,
    image_list,
    legacy_batches,
)
from albums.services.files import THUMBNAIL_SIZES
from albums.services.serving import image_file_response
from imagineer import permissions as perms
from imagineer.api_pagination import Pagination
from labeling.models import Label


class AlbumFilter(django_filters.FilterSet):
    source_type = django_filters.ChoiceFilter(choices=Album.SourceType.choices)

    class Meta:
        model = Album
        fields = ["source_type", "is_public"]


@extend_schema_view(
    list=extend_schema(summary="List albums", description="Filter with `?source_type=`, search names, order."),
    retrieve=extend_schema(
        summary="An album with its images in album order (paginated)",
        parameters=[
            OpenApiParameter("page", int, description="Page of the album's images."),
            OpenApiParameter("page_size", int, description="Images per page (at most 200)."),
        ],
    ),
)
class AlbumViewSet(viewsets.ReadOnlyModelViewSet):
    # Anonymous reads while IMAGINEER_PUBLIC_ALBUMS is on, narrowed to public albums (others 404).
    public_albums = True
    serializer_class = AlbumSerializer
    filterset_class = AlbumFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "description"]
    ordering_fields = ["created_at", "name", "image_count", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[AlbumWithSummary]:
        return perms.albums_visible(self.request.user, albums_annotated())

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return AlbumDetailSerializer if self.action == "retrieve" else AlbumSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        album = self.get_object()
        images = album_export_images(album=album, all_takes=request.query_params.get("takes") == "all")
        paginator = Pagination()
        page = paginator.paginate_queryset(images, request, view=self)
        data = AlbumSerializer(album, context=self.get_serializer_context()).data
        data["images"] = {
            "count": paginator.count,
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            "results": AlbumImageSerializer(page, many=True, context=self.get_serializer_context()).data,
        }
        return Response(data)


class UtcDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC here: PostgreSQL refuses offsets past ±16 hours."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a date-time between the years 1 and 9999.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ImageFilter(django_filters.FilterSet):
    album = django_filters.NumberFilter(method="filter_album", help_text="Only images in this album.")
    is_nsfw = django_filters.BooleanFilter()
    nsfw_rating = django_filters.ChoiceFilter(choices=Image.NsfwRating.choices)
    label = django_filters.CharFilter(method="filter_label", help_text="Only images with this tag (exact text).")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    created_on = django_filters.DateFilter(field_name="created_at", lookup_expr="date")

    class Meta:
        model = Image
        fields = ["album", "is_nsfw", "nsfw_rating", "label", "created_after", "created_before", "created_on"]

    def filter_album(self, queryset: QuerySet[Image], name: str, value: int) -> QuerySet[Image]:
        # An album this visitor may not see answers like a missing one: a private album's id must
        # not count the public images that are also in it.
        albums = perms.albums_visible(self.request.user).filter(pk=value)
        return queryset.filter(memberships__album__in=albums)

    def filter_label(self, queryset: QuerySet[Image], name: str, value: str) -> QuerySet[Image]:
        return queryset.filter(Exists(Label.objects.filter(image=OuterRef("pk"), text=value)))


INCLUDE_PARAMETER = OpenApiParameter(
    "include", str, enum=["labels"], description="`labels` adds each image's captions and tags."
)


@extend_schema_view(
    list=extend_schema(
        summary="List images",
        description="Filter by album, NSFW, label and date; `?search=` matches prompt and title.",
        parameters=[INCLUDE_PARAMETER],
    ),
    retrieve=extend_schema(
        summary="One image",
        parameters=[INCLUDE_PARAMETER],
    ),
)
class ImageViewSet(viewsets.ReadOnlyModelViewSet):
    # Anonymous reads while IMAGINEER_PUBLIC_ALBUMS is on, narrowed to images in public albums.
    public_albums = True
    filterset_class = ImageFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["prompt", "title"]
    ordering_fields = ["created_at", "id", "file_size", "width", "height"]
    ordering = ["-created_at", "-id"]

    @property
    def include_labels(self) -> bool:
        return "labels" in self.request.query_params.get("include", "").split(",")

    def get_queryset(self) -> QuerySet[Image]:
        # album_ids (retrieve) must not reveal the private albums an image is also in.
        memberships = perms.memberships_visible(self.request.user) if self.action == "retrieve" else None
        images = image_list(with_labels=self.include_labels, memberships=memberships)
        return perms.images_visible(self.request.user, images)

    def get_serializer_class(self) -> type[ImageSerializer]:
        return ImageDetailSerializer if self.action == "retrieve" else ImageSerializer

    def get_serializer(self, *args: Any, **kwargs: Any) -> ImageSerializer:
        kwargs.setdefault("context", self.get_serializer_context())
        return self.get_serializer_class()(*args, include_labels=self.include_labels, **kwargs)


class _FileView(APIView):
    """Binary responses: content negotiation must not refuse ``Accept: image/*``; errors stay JSON.

    Anonymous visitors (IMAGINEER_PUBLIC_ALBUMS on) get images in public albums; others answer 404.
    """

    public_albums = True

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)

    def image(self, request: Request, pk: int) -> Image:
        image = get_object_or_404(perms.images_visible(request.user), pk=pk)
        perms.ensure_can_view(request.user, image)
        return image


BINARY = OpenApiResponse(OpenApiTypes.BINARY, description="The image bytes (ETag, Last-Modified; 304 if unchanged).")
NOT_MODIFIED = OpenApiResponse(description="Not modified: the If-None-Match ETag still matches.")


class ImageFileView(_FileView):
    @extend_schema(
        summary="The original image file",
        responses={(200, "image/png"): BINARY, (200, "image/*"): BINARY, 304: NOT_MODIFIED},
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        return image_file_response(request._request, self.image(request, pk))


class ThumbnailQuerySerializer(serializers.Serializer):
    size = serializers.IntegerField(
        min_value=1,
        max_value=4096,
        default=256,
        help_text=f"Longest side in pixels; rounded up to one of {', '.join(map(str, THUMBNAIL_SIZES))}.",
    )


class ImageThumbnailView(_FileView):
    @extend_schema(
        summary="A WebP thumbnail (made once, cached on disk)",
        parameters=[ThumbnailQuerySerializer],
        responses={(200, "image/webp"): BINARY, 304: NOT_MODIFIED},
    )
    def get(self, request: Request, pk: int) -> HttpResponseBase:
        query = ThumbnailQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return image_file_response(
            request._request, self.image(request, pk), thumbnail_size=query.validated_data["size"]
        )


class LegacyBatchPagination(Pagination):
    """The original's ``{"batches": [...]}`` with the usual page links beside it."""

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "batches": data,
            }
        )


def _legacy_batch(album: AlbumWithCount) -> dict[str, Any]:
    return {
        "batch_id": album.slug,
        "album_id": album.pk,
        "name": album.name,
        "image_count": album.image_count,
        "created": album.created_at,
        "path": f"outputs/{album.slug}",
    }


class LegacyBatchListView(generics.GenericAPIView):
    public_albums = True
    pagination_class = LegacyBatchPagination
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[AlbumWithCount]:
        return perms.albums_visible(self.request.user, legacy_batches())

    @extend_schema(
        summary="Legacy: batch outputs (albums made by batch runs)",
        operation_id="batches_list",
        responses={200: LegacyBatchListSerializer},
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
    )
    def get(self, request: Request) -> Response:
        paginator = LegacyBatchPagination()
        page = paginator.paginate_queryset(self.get_queryset(), request, view=self) or []
        return paginator.get_paginated_response([_legacy_batch(album) for album in page])


class LegacyBatchDetailView(generics.GenericAPIView):
    public_albums = True
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[AlbumWithCount]:
        return perms.albums_visible(self.request.user, legacy_batches())

    @extend_schema(
        summary="Legacy: one batch's images",
        operation_id="batches_retrieve",
        description="`batch_id` is the album's slug or id.",
        responses={200: LegacyBatchDetailSerializer},
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
    )
    def get(self, request: Request, batch_id: str) -> Response:
        albums = self.get_queryset()
        album = albums.filter(slug=batch_id).first()
        if album is None and batch_id.isdigit() and len(batch_id) < 18:
            album = albums.filter(pk=int(batch_id)).first()
        if album is None:
            raise Http404("No batch with that id.")
        paginator = Pagination()
        page = paginator.paginate_queryset(album_images_in_order(album=album), request, view=self) or []
        data = _legacy_batch(album)
        data["images"] = [
            {
                "id": image.pk,
                "filename": (image.file.name or "").rsplit("/", 1)[-1],
                "relative_path": image.file.name,
                "url": reverse("api:image-file", kwargs={"pk": image.pk}, request=request),
                "thumbnail_url": reverse("api:image-thumbnail", kwargs={"pk": image.pk}, request=request),
                "created": image.created_at,
                "metadata": {"prompt": image.prompt, "negative_prompt": image.negative_prompt, **image.recipe},
            }
            for image in page
        ]
        data["next"] = paginator.get_next_link()
        data["previous"] = paginator.get_previous_link()
        return Response(LegacyBatchDetailSerializer(data).data)
