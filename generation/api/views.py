"""Generation over HTTP: single jobs, templates and their runs, LoRAs, random themes.

Views validate, call one service, serialize. Work that continues in the background answers
202 with a Location to poll; created objects answer 201.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from generation.api.serializers import (
    BatchTemplateDetailSerializer,
    BatchTemplateSerializer,
    GenerateSerializer,
    JobSerializer,
    LoraSerializer,
    LoraUploadSerializer,
    RunProgressSerializer,
    RunSerializer,
    RunStartSerializer,
    ThemeSerializer,
)
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob, Lora
from generation.selectors import job_list, lora_list, run_progress, template_list, template_runs
from generation.services.decks import run_complete
from generation.services.jobs import job_cancel, job_submit
from generation.services.loras import lora_delete, lora_upload
from generation.services.runs import run_cancel, run_retry, run_start
from generation.services.themes import theme_random
from imagineer import permissions as perms
from imagineer.api_common import accepted
from imagineer.config import config_get
from imagineer.permissions import GENERATE, ensure_can_edit

FILTERED = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]


# --- single jobs ------------------------------------------------------------------------


class GenerateView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="Queue one image",
        request=GenerateSerializer,
        responses={202: OpenApiResponse(JobSerializer, description="Queued; poll the Location (the job).")},
    )
    def post(self, request: Request) -> Response:
        serializer = GenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("album") is not None:
            ensure_can_edit(request.user, data["album"])  # the image goes into someone's album
        defaults = config_get()["generation"]
        job = job_submit(
            prompt=data["prompt"],
            negative_prompt=data.get("negative_prompt", defaults["negative_prompt"]),
            width=data.get("width", defaults["width"]),
            height=data.get("height", defaults["height"]),
            steps=data.get("steps", defaults["steps"]),
            guidance_scale=data.get("guidance_scale", defaults["guidance_scale"]),
            seed=data.get("seed"),
            loras=data.get("loras", ()),
            scheduler=data.get("scheduler") or None,
            album=data.get("album"),
            created_by=perms.acting_user(request.user),
        )
        body = JobSerializer(job, context={"request": request}).data
        return accepted(body, reverse("api:job-detail", kwargs={"pk": job.pk}), request)


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=GenerationJob.Status.choices)
    run = django_filters.NumberFilter()

    class Meta:
        model = GenerationJob
        fields = ["status", "run"]


@extend_schema_view(
    list=extend_schema(summary="Jobs: the queue and the history", description="Filter with `?status=`, `?run=`."),
    retrieve=extend_schema(summary="One job"),
    destroy=extend_schema(
        summary="Cancel a job",
        description="Queued jobs are cancelled at once; a running job stops at its next denoising step.",
        responses={202: OpenApiResponse(JobSerializer, description="Cancel requested; poll the job.")},
    ),
)
class JobViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = JobSerializer
    filterset_class = JobFilter
    filter_backends = FILTERED
    search_fields = ["prompt"]
    ordering_fields = ["created_at", "id", "status"]
    ordering = ["-created_at", "-id"]
    required_permission = GENERATE  # cancelling: owner or curator (RolePermission, "control")

    def get_queryset(self) -> QuerySet[GenerationJob]:
        return job_list()

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        job = self.get_object()
        job_cancel(job=job)
        job.refresh_from_db()
        return accepted(self.get_serializer(job).data, reverse("api:job-detail", kwargs={"pk": job.pk}), request)


# --- templates and runs -----------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List batch templates"),
    retrieve=extend_schema(summary="A batch template with its CSV rows"),
)
class BatchTemplateViewSet(viewsets.ReadOnlyModelViewSet):
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "id"]
    ordering = ["name"]
    required_permission = {"generate": GENERATE}
    object_permission = "view"  # templates are shared recipes: any creator may start a run of one

    def get_queryset(self) -> QuerySet[BatchTemplate]:
        return template_list()

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action == "generate":
            return RunStartSerializer
        return BatchTemplateDetailSerializer if self.action == "retrieve" else BatchTemplateSerializer

    @extend_schema(
        summary="Start a batch run of this template with a theme",
        request=RunStartSerializer,
        responses={202: OpenApiResponse(RunSerializer, description="Started; poll the Location (the run).")},
    )
    @action(detail=True, methods=["post"])
    def generate(self, request: Request, pk: str | None = None) -> Response:
        template = self.get_object()
        serializer = RunStartSerializer(data=request.data, context={"template": template})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        run = run_start(
            template=template,
            theme=data["theme"],
            album_name=data.get("album_name") or None,
            overrides=data.get("overrides") or None,
            rows=data.get("rows"),
            first=data.get("first"),
            sample=data.get("sample"),
            created_by=perms.acting_user(request.user),
        )
        location = reverse("api:batch-template-run-detail", kwargs={"template_pk": template.pk, "pk": run.pk})
        return accepted(RunSerializer(run, context={"request": request}).data, location, request)


class RunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BatchGenerationRun.Status.choices)

    class Meta:
        model = BatchGenerationRun
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="Runs of a template"),
    retrieve=extend_schema(summary="A run's progress: counts, per-item status, ETA"),
    destroy=extend_schema(
        summary="Cancel a run",
        responses={202: OpenApiResponse(RunSerializer, description="Cancel requested; poll the run.")},
    ),
)
class TemplateRunViewSet(mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = RunFilter
    filter_backends = FILTERED
    search_fields = ["theme"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]
    required_permission = GENERATE  # cancel and retry: owner or curator (RolePermission, "control")

    def get_queryset(self) -> QuerySet[BatchGenerationRun]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no template_pk
            return BatchGenerationRun.objects.none()
        template = get_object_or_404(BatchTemplate.objects.only("id"), pk=self.kwargs["template_pk"])
        return template_runs(template=template)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return RunProgressSerializer if self.action == "retrieve" else RunSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = self.get_object()
        context = {**self.get_serializer_context(), "progress": run_progress(run=run)}
        return Response(RunProgressSerializer(run, context=context).data)

    def _location(self, run: BatchGenerationRun) -> str:
        return reverse("api:batch-template-run-detail", kwargs={"template_pk": run.template_id, "pk": run.pk})

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = self.get_object()
        run_cancel(run=run)
        run.refresh_from_db()
        return accepted(RunSerializer(run, context={"request": request}).data, self._location(run), request)

    @extend_schema(
        summary="Retry a run's failed and cancelled items",
        request=None,
        responses={202: OpenApiResponse(RunSerializer, description="Retrying; poll the run.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = self.get_object()
        run_retry(run=run)
        run.refresh_from_db()
        return accepted(RunSerializer(run, context={"request": request}).data, self._location(run), request)

    @extend_schema(
        summary="Complete the deck: make the rows a try-first run left out, into the same album",
        request=None,
        responses={202: OpenApiResponse(RunSerializer, description="Queued; poll the run.")},
    )
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        run = run_complete(run=self.get_object(), created_by=perms.acting_user(request.user))
        return accepted(RunSerializer(run, context={"request": request}).data, self._location(run), request)


# --- themes and LoRAs -------------------------------------------------------------------


class RandomThemeView(APIView):
    @extend_schema(summary="A random theme to start from", responses={200: ThemeSerializer})
    def get(self, request: Request) -> Response:
        return Response({"theme": theme_random()})


@extend_schema_view(
    list=extend_schema(summary="The LoRA library"),
    retrieve=extend_schema(summary="One LoRA"),
    create=extend_schema(
        summary="Upload a .safetensors LoRA",
        request={"multipart/form-data": LoraUploadSerializer},
        responses={201: LoraSerializer},
    ),
    destroy=extend_schema(summary="Delete a LoRA no template uses (curators, or whoever uploaded it)"),
)
class LoraViewSet(mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = LoraSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filter_backends = FILTERED
    filterset_fields = ["base", "source"]
    search_fields = ["name", "trigger_words", "description"]
    ordering_fields = ["name", "created_at", "file_size", "id"]
    ordering = ["name"]
    # Deleting: the uploader or a curator (RolePermission, "control").
    required_permission = {"create": GENERATE, "destroy": GENERATE}

    def get_queryset(self) -> QuerySet[Lora]:
        return lora_list()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        upload = LoraUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        lora = lora_upload(
            uploaded_file=upload.validated_data["file"],
            name=upload.validated_data.get("name") or None,
            created_by=perms.acting_user(request.user),
        )
        lora = self.get_queryset().get(pk=lora.pk)
        headers = {"Location": reverse("api:lora-detail", kwargs={"pk": lora.pk}, request=request)}
        return Response(self.get_serializer(lora).data, status=status.HTTP_201_CREATED, headers=headers)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        lora_delete(lora=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
