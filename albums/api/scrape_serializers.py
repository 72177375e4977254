"""Shapes of scrape jobs in the API: what a client sends to start one, and what it reads back."""

from __future__ import annotations

from rest_framework import serializers

from albums.models import ScrapeJob
from imagineer.api_common import JOB_STATE_FIELDS, JobStateSerializer


class ScrapeJobSerializer(JobStateSerializer, serializers.ModelSerializer):
    album_name = serializers.CharField(source="album.name", read_only=True)
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    is_finished = serializers.BooleanField(read_only=True)

    class Meta:
        model = ScrapeJob
        fields = [
            "id",
            "status",
            "is_finished",
            "cancel_requested",
            "start_urls",
            "album",
            "album_name",
            "max_images",
            "max_pages",
            "max_depth",
            "same_site_only",
            "min_width",
            "min_height",
            "pages_fetched",
            "pages_skipped",
            "images_found",
            "images_downloaded",
            "images_skipped",
            "skip_reasons",
            "errors",
            "current_url",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            *JOB_STATE_FIELDS,
        ]
        read_only_fields = fields


class ScrapeJobCreateSerializer(serializers.Serializer):
    """Start URLs are plain strings here: the service checks them and says exactly why one is
    refused (scheme, private address...), which a generic URL validator would not."""

    start_urls = serializers.ListField(
        child=serializers.CharField(max_length=2000), allow_empty=False, help_text="Pages (or images) to start from."
    )
    album = serializers.IntegerField(required=False, allow_null=True, help_text="An existing album to add to.")
    album_name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Or: the name of a new album."
    )
    max_images = serializers.IntegerField(default=100)
    max_pages = serializers.IntegerField(default=20)
    max_depth = serializers.IntegerField(default=1)
    same_site_only = serializers.BooleanField(default=True)
    min_width = serializers.IntegerField(default=128)
    min_height = serializers.IntegerField(default=128)
