"""Card designs and finishing over the API: /api/cards/... (reads for viewers; finishing for the
deck's owner or a curator, with the role that may generate)."""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from albums.models import Album
from cards.api.serializers import (
    CardDesignCreateSerializer,
    CardDesignDetailSerializer,
    CardDesignSerializer,
    CardDesignWriteSerializer,
    DesignCopySerializer,
    FinishingJobSerializer,
    FinishingRequestSerializer,
    LayoutGuideImageSerializer,
    LayoutGuideImageUploadSerializer,
    LayoutGuideSerializer,
    LayoutGuideWriteSerializer,
)
from cards.models import FinishingJob, LayoutGuide
from cards.selectors import designs_visible, finishing_file_response, finishing_jobs_visible
from cards.services.designs import design_copy, design_create
from cards.services.guides import guide_preview_png, layout_guide_clear, layout_guide_image_add, layout_guide_save
from cards.services.jobs import design_change, finishing_cancel, finishing_start
from cards.services.preview import design_preview_png
from generation.models import BatchTemplate
from imagineer import permissions as perms
from imagineer.api_common import accepted
from imagineer.errors import field_error
from imagineer.permissions import GENERATE


def _int_param(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise field_error(name, f"{name} must be a whole number.") from None


def _visible_album(request: Request, pk: int | None, field: str = "album") -> Album | None:
    if pk is None:
        return None
    album = perms.albums_visible(request.user).filter(pk=pk).first()
    if album is None:
        raise field_error(field, f"Album {pk} does not exist (or you cannot see it).")
    return album


@extend_schema(parameters=[OpenApiParameter("template", int, description="Only this template's designs.")])
class DesignListView(ListAPIView):
    serializer_class = CardDesignSerializer
    required_permission = GENERATE

    def get_queryset(self):
        designs = designs_visible(self.request.user)
        template = _int_param(self.request, "template")
        return designs.filter(template_id=template) if template is not None else designs

    @extend_schema(
        summary="Make a card design for a template",
        request=CardDesignCreateSerializer,
        responses={201: CardDesignDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = CardDesignCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        template = _template_editable(request, data.pop("template"))
        design = design_create(
            template=template, name=data.pop("name"), created_by=perms.acting_user(request.user), **data
        )
        return Response(CardDesignDetailSerializer(design, context={"request": request}).data, status=201)


def _template_editable(request: Request, pk: int) -> BatchTemplate:
    template = BatchTemplate.objects.filter(pk=pk).first()
    if template is None:
        raise field_error("template", f"Template {pk} does not exist.")
    # A template's designs change with it: its owner or a curator.
    perms.ensure_can_edit(request.user, template)
    return template


class DesignDetailView(APIView):
    required_permission = GENERATE

    @extend_schema(summary="A card design's settings", responses=CardDesignDetailSerializer)
    def get(self, request: Request, pk: int) -> Response:
        design = get_object_or_404(designs_visible(request.user), pk=pk)
        return Response(CardDesignDetailSerializer(design, context={"request": request}).data)

    @extend_schema(
        summary="Change a card design (validated as a whole; the field at fault is named); its decks are finished again",
        request=CardDesignWriteSerializer,
        responses=CardDesignDetailSerializer,
    )
    def patch(self, request: Request, pk: int) -> Response:
        design = get_object_or_404(designs_visible(request.user), pk=pk)
        _template_editable(request, design.template_id)
        serializer = CardDesignWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        design, _refinishing = design_change(
            design=design, created_by=perms.acting_user(request.user), **serializer.validated_data
        )
        return Response(CardDesignDetailSerializer(design, context={"request": request}).data)


class DesignCopyView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="Copy a card design (to the same template or another)",
        request=DesignCopySerializer,
        responses={201: CardDesignDetailSerializer},
    )
    def post(self, request: Request, pk: int) -> Response:
        design = get_object_or_404(designs_visible(request.user), pk=pk)
        serializer = DesignCopySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        target = _template_editable(request, data.get("template", design.template_id))
        copy = design_copy(
            design=design, template=target, name=data.get("name"), created_by=perms.acting_user(request.user)
        )
        return Response(CardDesignDetailSerializer(copy, context={"request": request}).data, status=201)


class DesignPreviewView(APIView):
    @extend_schema(
        summary="Live preview of a design on one card (PNG, trim only, rounded corners)",
        parameters=[
            OpenApiParameter("index", int, description="The card, from 1 (a template row, or a deck's slot)."),
            OpenApiParameter("album", int, description="Use this deck's pick as the art."),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        design = get_object_or_404(designs_visible(request.user), pk=pk)
        album = _visible_album(request, _int_param(request, "album"))
        data = design_preview_png(design=design, index=_int_param(request, "index", 1) or 1, album=album)
        response = HttpResponse(data, content_type="image/png")
        response["Cache-Control"] = "private, max-age=0, must-revalidate"
        return response


class FinishingListView(ListAPIView):
    serializer_class = FinishingJobSerializer
    required_permission = GENERATE

    @extend_schema(
        summary="Finishing jobs (newest first)",
        parameters=[OpenApiParameter("album", int, description="Only this album's jobs.")],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        album = _visible_album(self.request, _int_param(self.request, "album"))
        return finishing_jobs_visible(self.request.user, album).order_by("-created_at", "-id")

    @extend_schema(
        summary="Finish a deck in a design (and write exports) in the background",
        request=FinishingRequestSerializer,
        responses={202: OpenApiResponse(FinishingJobSerializer, description="Queued; poll Location.")},
    )
    def post(self, request: Request) -> Response:
        serializer = FinishingRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        album = _visible_album(request, data["album"])
        assert album is not None
        perms.ensure_can_change_deck(request.user, album)
        design = designs_visible(request.user).filter(pk=data["design"]).first()
        if design is None:
            raise field_error("design", f"Card design {data['design']} does not exist.")
        job = finishing_start(
            album=album,
            design=design,
            formats=data["formats"],
            duplex=data["duplex"],
            force=data["force"],
            hires=data["hires"],
            hires_scale=data["hires_scale"],
            hires_denoise=data["hires_denoise"],
            created_by=perms.acting_user(request.user),
        )
        location = reverse("cards-api:finishing-detail", kwargs={"pk": job.pk})
        return accepted(FinishingJobSerializer(job, context={"request": request}).data, location, request)


class FinishingDetailView(APIView):
    @extend_schema(
        summary="A finishing job: status, stage progress, downloads, cards left out", responses=FinishingJobSerializer
    )
    def get(self, request: Request, pk: int) -> Response:
        # As visible as its album (finishing_jobs_visible), like the album's other reads.
        job = get_object_or_404(finishing_jobs_visible(request.user), pk=pk)
        return Response(FinishingJobSerializer(job, context={"request": request}).data)


class FinishingCancelView(APIView):
    required_permission = GENERATE

    @extend_schema(summary="Cancel a finishing job", request=None, responses=FinishingJobSerializer)
    def post(self, request: Request, pk: int) -> Response:
        job: FinishingJob = get_object_or_404(finishing_jobs_visible(request.user), pk=pk)
        perms.ensure_can_control(request.user, job)
        job = finishing_cancel(job=job)
        return Response(FinishingJobSerializer(job, context={"request": request}).data)


class FinishingFileView(APIView):
    @extend_schema(
        summary="Download one export of a finished job",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, pk: int, name: str) -> FileResponse:
        job = get_object_or_404(finishing_jobs_visible(request.user), pk=pk)
        return finishing_file_response(job, name)


def _template(pk: int) -> BatchTemplate:
    # Templates are shared recipes: every signed-in user reads them, so their guides too.
    return get_object_or_404(BatchTemplate, pk=pk)


def _guide_or_none(template: BatchTemplate) -> LayoutGuide:
    """The template's guide, or an unsaved one of kind "none" to show that there is none."""
    return LayoutGuide.objects.filter(template=template).first() or LayoutGuide(template=template, kind="none")


class GuideDetailView(APIView):
    required_permission = GENERATE

    @extend_schema(
        summary="A template's layout guide (kind 'none' when there is none)", responses=LayoutGuideSerializer
    )
    def get(self, request: Request, template_pk: int) -> Response:
        guide = _guide_or_none(_template(template_pk))
        return Response(LayoutGuideSerializer(guide, context={"request": request}).data)

    @extend_schema(
        summary="Set a template's layout guide: none, playing cards, one image for all rows, or an image per row "
        "named by a column; steering by img2img (strength) or ControlNet (scale, start, end)",
        request=LayoutGuideWriteSerializer,
        responses=LayoutGuideSerializer,
    )
    def put(self, request: Request, template_pk: int) -> Response:
        template = _template_editable(request, _template(template_pk).pk)
        serializer = LayoutGuideWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data["kind"] == "none":
            layout_guide_clear(template=template)
        else:
            layout_guide_save(template=template, **data)
        return Response(LayoutGuideSerializer(_guide_or_none(template), context={"request": request}).data)


class GuideImageUploadView(APIView):
    required_permission = GENERATE
    # JSON too, so a body without a file is told which field is missing rather than a 415.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        summary="Upload a layout image (replaces one of the same name); undecodable files and bombs are refused",
        request={"multipart/form-data": LayoutGuideImageUploadSerializer},
        responses={201: LayoutGuideImageSerializer},
    )
    def post(self, request: Request, template_pk: int) -> Response:
        template = _template_editable(request, _template(template_pk).pk)
        serializer = LayoutGuideImageUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        guide = LayoutGuide.objects.filter(template=template).first()
        if guide is None or guide.kind == LayoutGuide.Kind.PLAYING_CARDS:
            raise field_error("kind", "Set the guide's kind to 'image' or 'column' before uploading layout images.")
        record = layout_guide_image_add(
            guide=guide, name=serializer.validated_data["name"], upload=serializer.validated_data["file"]
        )
        return Response(LayoutGuideImageSerializer(record).data, status=201)


class GuidePreviewView(APIView):
    @extend_schema(
        summary="The guide of one template row at the generation size (PNG)",
        parameters=[OpenApiParameter("index", int, description="The template row, from 1.")],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, template_pk: int) -> HttpResponse:
        guide = get_object_or_404(LayoutGuide.objects.select_related("template"), template_id=template_pk)
        data = guide_preview_png(guide=guide, index=_int_param(request, "index", 1) or 1)
        response = HttpResponse(data, content_type="image/png")
        response["Cache-Control"] = "private, max-age=0, must-revalidate"
        return response
