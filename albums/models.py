"""Albums and images.

An Album is an ordered collection; an Image may belong to several albums through
AlbumImage, which carries the position. Image rows only ever point at complete files: the
writers put a file in place (temporary name, then rename) before creating the row.
"""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models
from django.utils.text import slugify

from imagineer.models import Job


class Album(models.Model):
    class SourceType(models.TextChoices):
        BATCH_GENERATION = "batch_generation", "Batch generation"
        SCRAPE = "scrape", "Web scrape"
        MANUAL = "manual", "Manual curation"
        UPLOAD = "upload", "Upload"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=220, unique=True)
    description = models.TextField(blank=True)
    source_type = models.CharField(max_length=32, choices=SourceType.choices, default=SourceType.MANUAL, db_index=True)
    is_public = models.BooleanField(
        default=False, help_text="Visible to anonymous visitors when public albums are enabled."
    )
    images: models.ManyToManyField[Image, AlbumImage] = models.ManyToManyField(
        "Image", through="AlbumImage", related_name="albums"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="albums"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("curate", "Can edit any template, album, image, label and LoRA"),
            ("scrape", "Can scrape web images into albums"),
        ]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def unique_slug(name: str) -> str:
        base = slugify(name)[:200] or "album"
        slug, counter = base, 2
        while Album.objects.filter(slug=slug).exists():
            slug = f"{base}-{counter}"
            counter += 1
        return slug


class Image(models.Model):
    class NsfwRating(models.TextChoices):
        SAFE = "SAFE", "Safe"
        SUGGESTIVE = "SUGGESTIVE", "Suggestive"
        ADULT = "ADULT", "Adult"
        EXPLICIT = "EXPLICIT", "Explicit"

    NSFW_RATINGS_BLURRED = frozenset({NsfwRating.ADULT, NsfwRating.EXPLICIT})

    # Path relative to MEDIA_ROOT; files are served by id through a permission-checking view.
    file = models.FileField(max_length=500)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    file_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    perceptual_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # Generated images: the whole recipe (prompt parts, seed, LoRAs, model...); also in the
    # PNG's parameters chunk and the JSON sidecar.
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    recipe = models.JSONField(default=dict, blank=True)
    # Scraped images: provenance.
    source_url = models.URLField(max_length=2000, blank=True)
    source_page_url = models.URLField(max_length=2000, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    title = models.CharField(max_length=300, blank=True)
    is_nsfw = models.BooleanField(default=False, db_index=True)
    nsfw_rating = models.CharField(max_length=16, choices=NsfwRating.choices, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title or (self.file.name or "").rsplit("/", 1)[-1] or f"Image {self.pk}"


class AlbumImage(models.Model):
    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="memberships")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="memberships")
    position = models.PositiveIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["album", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["album", "image"], name="album_image_unique")]
        indexes = [models.Index(fields=["album", "position"])]

    def __str__(self) -> str:
        return f"{self.album} #{self.position}"


class ScrapeProblem(TypedDict):
    """One entry of ``ScrapeJob.errors``: a URL refused or failed, and why."""

    url: str
    reason: str
    message: str


class ScrapeJob(Job):
    """Collecting images from web pages into an album (``source_type='scrape'``).

    A background job (imagineer.models.Job documents the transitions, claim, heartbeat and
    cancel): queued -> running [-> cancelling] -> succeeded | failed | cancelled. The crawler
    checks ``cancel_requested`` before every request. Counters are written as the crawl goes,
    a few times a second at most, together with the heartbeat; pages and the API read only
    them. progress_done / progress_total: images kept out of ``max_images``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    # A crawl of many pages with per-host delays can outlive the broker's visibility timeout.
    REDELIVERY_TAKES_OVER = False

    start_urls: models.JSONField[list[str], list[str]] = models.JSONField(default=list)
    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="scrape_jobs")
    max_images = models.PositiveIntegerField(default=100)
    max_pages = models.PositiveIntegerField(default=20)
    max_depth = models.PositiveSmallIntegerField(default=1, help_text="How many links away from a start page to go.")
    same_site_only = models.BooleanField(default=True, help_text="Follow links only to the start pages' hosts.")
    min_width = models.PositiveIntegerField(default=128)
    min_height = models.PositiveIntegerField(default=128)

    status = models.CharField(max_length=32, choices=Status.choices, default=Status.QUEUED, db_index=True)
    pages_fetched = models.PositiveIntegerField(default=0)
    pages_skipped = models.PositiveIntegerField(default=0)
    images_found = models.PositiveIntegerField(default=0)
    images_downloaded = models.PositiveIntegerField(default=0)
    images_skipped = models.PositiveIntegerField(default=0)
    # reason code -> count, for pages and images ("duplicate", "robots", "too_large"...).
    skip_reasons: models.JSONField[dict[str, int], dict[str, int]] = models.JSONField(default=dict, blank=True)
    # The most recent problems, newest last, bounded.
    errors: models.JSONField[list[ScrapeProblem], list[ScrapeProblem]] = models.JSONField(default=list, blank=True)
    current_url = models.URLField(max_length=2000, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="scrape_jobs"
    )

    class Meta(Job.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        first = self.start_urls[0] if self.start_urls else "?"
        return f"Scrape {self.pk} of {first}"
