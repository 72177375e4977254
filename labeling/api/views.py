"""Labeling over HTTP: queue an image or an album, poll the task or the album job."""

from __future__ import annotations

from typing import Any

import django_filters
from celery.result import AsyncResult
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters, mixins, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from imagineer import permissions as perms
from imagineer.api_common import accepted
from imagineer.permissions import LABEL
from labeling.api.serializers import (
    LabelingJobQueuedSerializer,
    LabelingJobSerializer,
    LabelQueuedSerializer,
    LabelRequestSerializer,
    TaskStatusSerializer,
)
from labeling.models import LabelingJob
from labeling.selectors import labeling_jobs_list
from labeling.services import album_label_start, image_label_enqueue, labeling_job_cancel


class ImageLabelView(APIView):
    required_permission = LABEL  # and the image's owner or a curator (labels replace its labels)

    @extend_schema(
        summary="Queue AI labeling of one image",
        request=LabelRequestSerializer,
        responses={202: OpenApiResponse(LabelQueuedSerializer, description="Queued; poll status_url.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        image = get_object_or_404(perms.images_visible(request.user), pk=pk)
        perms.ensure_can_label_image(request.user, image)
        serializer = LabelRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task_id = image_label_enqueue(
            image=image,
            prompt_type=serializer.validated_data["prompt_type"],
            force=serializer.validated_data["force"],
            backend=serializer.validated_data.get("backend"),
            user=perms.acting_user(request.user),
        )
        location = reverse("api:labeling-task", kwargs={"task_id": task_id})
        body = {"status": "queued", "task_id": task_id, "status_url": request.build_absolute_uri(location)}
        return accepted(body, location, request)


class AlbumLabelView(APIView):
    required_permission = LABEL  # and the album's owner or a curator

    @extend_schema(
        summary="Queue AI labeling of every image of an album",
        description="Images already labelled with this prompt type are skipped unless `force` is true.",
        request=LabelRequestSerializer,
        responses={202: OpenApiResponse(LabelingJobQueuedSerializer, description="Queued; poll status_url.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        album = get_object_or_404(perms.albums_visible(request.user), pk=pk)
        perms.ensure_can_label_album(request.user, album)
        serializer = LabelRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = album_label_start(
            album=album,
            prompt_type=serializer.validated_data["prompt_type"],
            force=serializer.validated_data["force"],
            backend=serializer.validated_data.get("backend"),
            user=perms.acting_user(request.user),
        )
        location = reverse("api:labeling-job-detail", kwargs={"pk": job.pk})
        body = {
            "status": "queued",
            "task_id": job.task_id,
            "job_id": job.pk,
            "status_url": request.build_absolute_uri(location),
        }
        return accepted(body, location, request)


class TaskStatusView(APIView):
    @extend_schema(summary="State of a labeling task", responses={200: TaskStatusSerializer})
    def get(self, request: Request, task_id: str) -> Response:
        result = AsyncResult(task_id)
        state = result.state
        return Response(
            {
                "task_id": task_id,
                "status": state.lower(),
                "result": result.result if state == "SUCCESS" else None,
                "error": str(result.result) if state == "FAILURE" else None,
            }
        )


class LabelingJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=LabelingJob.Status.choices)
    album = django_filters.NumberFilter()

    class Meta:
        model = LabelingJob
        fields = ["status", "album"]


@extend_schema_view(
    list=extend_schema(summary="Album labeling jobs"),
    retrieve=extend_schema(summary="An album labeling job's progress"),
    destroy=extend_schema(
        summary="Cancel an album labeling job",
        responses={202: OpenApiResponse(LabelingJobSerializer, description="Cancelled; images running finish.")},
    ),
)
class LabelingJobViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = LabelingJobSerializer
    filterset_class = LabelingJobFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]
    # A job is as visible as its album; cancelling: owner or curator (RolePermission, "control").
    required_permission = LABEL

    def get_queryset(self) -> QuerySet[LabelingJob]:
        return labeling_jobs_list()

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        job = labeling_job_cancel(job=self.get_object())
        location = reverse("api:labeling-job-detail", kwargs={"pk": job.pk})
        return accepted(self.get_serializer(job).data, location, request)
