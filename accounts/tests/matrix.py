"""Helpers for the permission matrix: route discovery, a world of owned objects, one request per role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "viewer", "creator", "other", "curator")


def url_routes(patterns: list | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every URL pattern in the project as (full route string, callback)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from url_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_methods(callback: Any) -> set[str]:
    """The HTTP methods a DRF view answers (viewset routes: those of its actions); empty for other views."""
    cls = getattr(callback, "cls", None)
    if cls is None:
        return set()
    actions = getattr(callback, "actions", None)
    if actions:
        # DRF adds "head" to this (shared) dict on a route's first request: the set must not
        # depend on whether an earlier test in the process requested the route.
        return {method.upper() for method in actions if method != "head"}
    return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)}


@dataclass
class World:
    users: dict[str, Any]
    ids: dict[str, Any]
    tokens: dict[str, str]
    sessions: dict[str, str] = field(default_factory=dict)

    def client(self, role: str, *, api: bool) -> Client:
        """Pages sign in with a session; the API with the role's personal token (no session)."""
        if role == "anonymous":
            return Client()
        if api:
            return Client(HTTP_AUTHORIZATION=f"Token {self.tokens[role]}")
        client = Client()
        if role not in self.sessions:
            client.force_login(self.users[role])
            self.sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
        # Reuse one session per role (its row outlives the rolled-back savepoints); signing in
        # again for every request would double the matrix's run time.
        client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


def world_build() -> World:
    from accounts.services import token_create
    from albums.services.files import media_path
    from cards.models import CardDesign, FinishingJob
    from generation.models import BatchGenerationRun, DeckComparison, DeckSlot, GenerationJob
    from imagineer.tests.factories import (
        AlbumFactory,
        AlbumImageFactory,
        BatchTemplateFactory,
        ImageFactory,
        LabelFactory,
        LabelingJobFactory,
        LoraFactory,
        ScrapeJobFactory,
        TrainingRunFactory,
        UserFactory,
    )
    from training.models import TrainingRun

    users = {
        "viewer": UserFactory.create(username="m-viewer", role="viewer"),
        "creator": UserFactory.create(username="m-creator", role="creator"),
        "other": UserFactory.create(username="m-other", role="creator"),
        "curator": UserFactory.create(username="m-curator", role="curator"),
    }
    owner = users["creator"]
    album = AlbumFactory.create(created_by=owner, slug="m-album", source_type="batch_generation")
    image = ImageFactory.create(created_by=owner)
    AlbumImageFactory.create(album=album, image=image)
    # Made by nobody (say, scraped), in another album of the owner's.
    album_image = ImageFactory.create()
    AlbumImageFactory.create(album=AlbumFactory.create(created_by=owner, slug="m-scraped"), image=album_image)
    template = BatchTemplateFactory.create(created_by=owner, slug="m-template")
    run = BatchGenerationRun.objects.create(
        template=template, album=album, created_by=owner, status=BatchGenerationRun.Status.RUNNING, total_items=1
    )
    job = GenerationJob.objects.create(
        run=run,
        row_index=0,
        album=album,
        prompt="a card",
        width=64,
        height=64,
        steps=2,
        guidance_scale=7.0,
        seed=1,
        created_by=owner,
    )
    slot = DeckSlot.objects.create(album=album, index=0, title="Ace", row={"value": "Ace"}, run=run)
    GenerationJob.objects.filter(pk=job.pk).update(slot=slot)
    comparison = DeckComparison.objects.create(
        template=template, name="m-comparison", variants=[{"theme": "a"}, {"theme": "b"}], created_by=owner
    )
    lora = LoraFactory.create(created_by=owner)
    label = LabelFactory.create(image=image, created_by=owner)
    scrape = ScrapeJobFactory.create(start_urls=["http://127.0.0.1:9/"], album=album, created_by=owner)
    labeling_job = LabelingJobFactory.create(album=album, created_by=owner)
    training = TrainingRunFactory.create(
        album=album,
        name="m-lora",
        trigger_word="mtrig",
        created_by=owner,
        status=TrainingRun.Status.RUNNING,
        phase=TrainingRun.Phase.TRAINING,
    )
    design = CardDesign.objects.create(template=template, name="m-design")
    finishing = FinishingJob.objects.create(album=album, design=design, created_by=owner)
    export = f"exports/{album.slug}/job-{finishing.pk}/cards.zip"
    media_path(export).parent.mkdir(parents=True, exist_ok=True)
    media_path(export).write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    finishing.result = {"files": {"zip": export}}
    finishing.save(update_fields=["result"])
    tokens = {role: token_create(user=user, name="matrix")[1] for role, user in users.items()}
    ids = {
        "album": album.pk,
        "image": image.pk,
        "album_image": album_image.pk,
        "template": template.pk,
        "template_slug": template.slug,
        "run": run.pk,
        "job": job.pk,
        "lora": lora.pk,
        "label": label.pk,
        "scrape": scrape.pk,
        "labeling_job": labeling_job.pk,
        "training": training.pk,
        "design": design.pk,
        "finishing": finishing.pk,
        "comparison": comparison.pk,
        "album_slug": album.slug,
        "token": owner.api_tokens.get().pk,
    }
    return World(users=users, ids=ids, tokens=tokens)


def request_as(world: World, role: str, method: str, path: str, data: Any = None) -> int:
    """One request in a savepoint that is rolled back, so every role meets the same world."""
    api = path.startswith("/api/")
    client = world.client(role, api=api)
    with transaction.atomic():
        if method == "GET":
            response = client.get(path)
        elif api:
            response = client.generic(method, path, data=_json(data), content_type="application/json")
        else:
            response = client.generic(method, path, data=_form(data), content_type="application/x-www-form-urlencoded")
        transaction.set_rollback(True)
    return response.status_code


def _json(data: Any) -> str:
    import json

    return json.dumps(data if data is not None else {})


def _form(data: Any) -> str:
    from urllib.parse import urlencode

    return urlencode(data or {}, doseq=True)


def fill(path: str, world: World) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(world.ids[m.group(1)]), path)


def fill_data(data: dict | None, world: World) -> dict | None:
    """A row's request body with ``"{album}"``-style values replaced by the world's ids."""
    if data is None:
        return None
    placeholder = re.compile(r"\{(\w+)\}")
    return {
        key: world.ids[match.group(1)] if isinstance(value, str) and (match := placeholder.fullmatch(value)) else value
        for key, value in data.items()
    }
