"""``/api/scrape-jobs``: start, list, follow and cancel scrape jobs."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from albums.api.scrape_serializers import ScrapeJobCreateSerializer, ScrapeJobSerializer
from albums.models import ScrapeJob
from albums.selectors import scrape_job_list
from albums.services.scraping import scrape_job_cancel, scrape_job_create
from imagineer import permissions as perms
from imagineer.api_common import accepted
from imagineer.errors import field_error
from imagineer.permissions import SCRAPE, RolePermission


@extend_schema_view(
    list=extend_schema(summary="Your scrape jobs (everyone's for curators), newest first"),
    retrieve=extend_schema(summary="A scrape job with its progress counters and recent problems"),
    create=extend_schema(
        summary="Start a scrape job into an existing album or a new one",
        request=ScrapeJobCreateSerializer,
        responses={202: ScrapeJobSerializer},
    ),
    cancel=extend_schema(summary="Cancel a scrape job", request=None, responses={200: ScrapeJobSerializer}),
)
class ScrapeJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ScrapeJobSerializer
    permission_classes = [RolePermission]
    required_permission = SCRAPE  # cancelling: owner or curator (RolePermission, "control")

    def get_queryset(self) -> QuerySet[ScrapeJob]:
        return perms.scrape_jobs_visible(self.request.user, scrape_job_list())

    def create(self, request: Request) -> Response:
        serializer = ScrapeJobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        album = None
        album_id = data.pop("album", None)
        if album_id is not None:
            album = perms.albums_visible(request.user).filter(pk=album_id).first()
            if album is None:
                raise field_error("album", f"No album with id {album_id}.")
            perms.ensure_can_edit(request.user, album)  # scraping into it adds images to it
        job = scrape_job_create(user=perms.acting_user(request.user), album=album, **data)
        job = self.get_queryset().get(pk=job.pk)
        location = reverse("scrape-api:scrape-job-detail", kwargs={"pk": job.pk})
        return accepted(ScrapeJobSerializer(job).data, location, request)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = scrape_job_cancel(job=self.get_object())
        return Response(ScrapeJobSerializer(self.get_queryset().get(pk=job.pk)).data)
