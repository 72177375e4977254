"""Training over HTTP: start, list, follow, cancel and resume runs; export an album as a dataset."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from imagineer import permissions as perms
from imagineer.errors import field_error
from imagineer.permissions import TRAIN, RolePermission
from training.api.serializers import TrainingRunDetailSerializer, TrainingRunSerializer, TrainingStartSerializer
from training.models import TrainingRun
from training.selectors import training_run_detail, training_run_list
from training.services.datasets import EXPORT_REPEATS, dataset_export_spooled, dataset_zip_name, trigger_word_default
from training.services.runs import (
    PARAMETER_HELP,
    PARAMETER_NAMES,
    training_cancel,
    training_defaults,
    training_resume,
    training_start,
)


def _run_or_404(request: Request, pk: int) -> TrainingRun:
    """The run, or 404 when it does not exist or is someone else's (its owner and curators only)."""
    return get_object_or_404(perms.training_runs_visible(request.user, training_run_detail()), pk=pk)


def _run_to_control(request: Request, pk: int) -> TrainingRun:
    run = _run_or_404(request, pk)
    perms.ensure_can_control(request.user, run)
    return run


class TrainingRunListView(generics.GenericAPIView):
    permission_classes = [RolePermission]
    required_permission = TRAIN
    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.none()  # for the schema; get() reads through training_run_list

    @extend_schema(
        summary="List training runs (yours; curators see all)",
        operation_id="training_runs_list",
        parameters=[OpenApiParameter("album", int, description="Only runs of this album.")],
        responses=TrainingRunSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        album = request.query_params.get("album")
        runs = training_run_list(album_id=int(album) if album and album.isdigit() else None)
        runs = perms.training_runs_visible(request.user, runs)
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(TrainingRunSerializer(page, many=True).data)

    @extend_schema(
        summary="Start training a LoRA from an album (queued on the gpu queue)",
        request=TrainingStartSerializer,
        responses={201: OpenApiResponse(TrainingRunSerializer, description="Queued; poll the Location (the run).")},
    )
    def post(self, request: Request) -> Response:
        serializer = TrainingStartSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        album = perms.albums_visible(request.user).filter(pk=data.pop("album")).first()
        if album is None:
            raise field_error("album", "No such album.")
        run = training_start(
            album=album,
            name=data.pop("name"),
            trigger_word=data.pop("trigger_word"),
            base_model=data.pop("base_model", None),
            caption_source=data.pop("caption_source", TrainingRun.CaptionSource.AUTO),
            sample_prompts=data.pop("sample_prompts", None),
            params={name: data[name] for name in PARAMETER_NAMES if name in data},
            created_by=perms.acting_user(request.user),
        )
        location = reverse("training-api:run-detail", args=[run.pk], request=request)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED, headers={"Location": location})


class TrainingRunDetailView(APIView):
    permission_classes = [RolePermission]

    @extend_schema(
        summary="A training run with its loss history, checkpoints and dataset", responses=TrainingRunDetailSerializer
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(TrainingRunDetailSerializer(_run_or_404(request, pk)).data)


class TrainingRunCancelView(APIView):
    permission_classes = [RolePermission]
    required_permission = TRAIN

    @extend_schema(
        summary="Cancel: a queued run at once, a running one after its current step (keeps a checkpoint)",
        request=None,
        responses={202: TrainingRunSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = training_cancel(run=_run_to_control(request, pk))
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunResumeView(APIView):
    permission_classes = [RolePermission]
    required_permission = TRAIN

    @extend_schema(
        summary="Resume a failed or cancelled run from its last checkpoint",
        request=None,
        responses={202: TrainingRunSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        run = training_resume(run=_run_to_control(request, pk))
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def inline_defaults_serializer() -> serializers.Serializer:
    return inline_serializer(
        "TrainingDefaults",
        {"defaults": serializers.DictField(), "help": serializers.DictField(child=serializers.CharField())},
    )


class TrainingDefaultsView(APIView):
    permission_classes = [RolePermission]

    @extend_schema(
        summary="Default training parameters and their help text",
        responses=inline_defaults_serializer(),
    )
    def get(self, request: Request) -> Response:
        return Response({"defaults": training_defaults(), "help": PARAMETER_HELP})


class DatasetExportView(APIView):
    """The album as a kohya-style dataset: ``N_trigger/`` with image + ``.txt`` caption pairs, zipped."""

    permission_classes = [RolePermission]

    @extend_schema(
        summary="Download an album as a kohya-style dataset zip",
        parameters=[
            OpenApiParameter("trigger_word", str, description="Folder name part and first word of every caption."),
            OpenApiParameter("caption_source", str, enum=TrainingRun.CaptionSource.values),
            OpenApiParameter("repeats", int, description="kohya repeats: the N of N_trigger/ (1-1000)."),
        ],
        responses={(200, "application/zip"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, album_id: int) -> FileResponse:
        album = get_object_or_404(perms.albums_visible(request.user), pk=album_id)
        handle = dataset_export_spooled(
            album=album,
            trigger_word=request.query_params.get("trigger_word") or trigger_word_default(album),
            caption_source=request.query_params.get("caption_source") or TrainingRun.CaptionSource.AUTO,
            repeats=request.query_params.get("repeats") or EXPORT_REPEATS,
        )
        return FileResponse(
            handle, as_attachment=True, filename=dataset_zip_name(album), content_type="application/zip"
        )
