"""Image search: words over prompts, card titles and labels; filters for LoRA, seed, template,
date and NSFW. PostgreSQL full-text search (English stemming, web-search syntax: quotes, ``or``,
``-word``) where the database is PostgreSQL; on SQLite every word must appear as a substring.

One query for the page of results whatever its size: the caller narrows ``images`` to what the
visitor may see (:func:`imagineer.permissions.images_visible`) before calling.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from albums.models import Image
from labeling.models import Label

NSFW_CHOICES = (("any", "Show all"), ("hide", "Hide NSFW"), ("only", "Only NSFW"))
QUERY_MAX = 200


@dataclass(frozen=True)
class ImageQuery:
    text: str = ""
    lora: str = ""
    template: str = ""
    seed: int | None = None
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    nsfw: str = "any"

    @property
    def is_empty(self) -> bool:
        return not (self.text or self.lora or self.template or self.seed is not None or self.date_from or self.date_to)


def _text_match_postgres(images: QuerySet[Image], text: str) -> QuerySet[Image]:
    query = SearchQuery(text, config="english", search_type="websearch")
    labels = Label.objects.annotate(document=SearchVector("text", config="english")).filter(
        image=OuterRef("pk"), document=query
    )
    return images.annotate(document=SearchVector("prompt", "title", config="english")).filter(
        Q(document=query) | Exists(labels)
    )


def _text_match_substrings(images: QuerySet[Image], text: str) -> QuerySet[Image]:
    for word in text.split():
        labels = Label.objects.filter(image=OuterRef("pk"), text__icontains=word)
        images = images.filter(Q(prompt__icontains=word) | Q(title__icontains=word) | Exists(labels))
    return images


def image_search(images: QuerySet[Image], query: ImageQuery) -> QuerySet[Image]:
    """``images`` narrowed to those matching every part of ``query``, newest first."""
    if query.text.strip():
        match = _text_match_postgres if connection.vendor == "postgresql" else _text_match_substrings
        images = match(images, query.text.strip())
    if query.lora:
        # The recipe keeps the stack as the job's snapshot: name, sha256, weight.
        images = images.filter(generation_job__lora_stack__icontains=query.lora)
    if query.template:
        images = images.filter(
            Q(generation_job__run__template__name__icontains=query.template)
            | Q(generation_job__run__template__slug=query.template)
        )
    if query.seed is not None:
        images = images.filter(generation_job__seed=query.seed)
    if query.date_from:
        images = images.filter(created_at__date__gte=query.date_from)
    if query.date_to:
        images = images.filter(created_at__date__lte=query.date_to)
    if query.nsfw == "hide":
        images = images.filter(is_nsfw=False)
    elif query.nsfw == "only":
        images = images.filter(is_nsfw=True)
    return images.order_by("-created_at", "-id")
