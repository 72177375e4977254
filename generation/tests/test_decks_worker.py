"""Decks end to end through a real gpu worker: try first, complete, more takes, vary, pick, zip."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.urls import reverse
from PIL import Image as PILImage

from albums.services.files import media_path
from generation.engine.png import infotext_parse
from generation.models import BatchTemplate, DeckSlot, GenerationJob
from generation.services.builtin import builtin_templates_load
from generation.services.decks import run_complete, slot_pick, slot_vary, slots_takes_add
from generation.services.runs import run_start
from generation.tests.support import WORKER_ENV, pixel_difference
from imagineer.testing import wait_for
from imagineer.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 500}


def _settled(album) -> None:
    def done():
        return not GenerationJob.objects.filter(album=album, status__in=["queued", "running", "cancelling"]).exists()

    wait_for(done, timeout=300, message="the deck's takes to finish")


def test_zodiac_deck_try_first_complete_takes_vary_pick_and_zip(celery_worker, client):
    builtin_templates_load()
    template = BatchTemplate.objects.get(slug="zodiac")
    assert template.title_template == "{sign}"
    owner = UserFactory(role="creator")
    celery_worker("gpu", extra_env=WORKER_ENV)

    run = run_start(template=template, theme="ink", overrides=SMALL, first=3, created_by=owner)
    album = run.album
    _settled(album)
    assert album.images.count() == 3
    run = run_complete(run=run, created_by=owner)
    _settled(album)
    run.refresh_from_db()
    assert run.status == "completed" and run.completed_items == 12
    slots = list(DeckSlot.objects.filter(album=album).order_by("index"))
    assert [slot.title for slot in slots][:3] == ["Aries", "Taurus", "Gemini"]

    aries = slots[0]
    slots_takes_add(slots=[aries], count=3, created_by=owner)
    _settled(album)
    takes = list(GenerationJob.objects.filter(slot=aries).order_by("id").select_related("result_image"))
    assert len(takes) == 4 and all(job.status == "succeeded" for job in takes)
    assert len({job.seed for job in takes}) == 4

    source = takes[1]
    first, again = slot_vary(slot=aries, image=source.result_image, strength=0.5, created_by=owner) + slot_vary(
        slot=aries, image=source.result_image, strength=0.5, created_by=owner
    )
    _settled(album)
    first.refresh_from_db()
    again.refresh_from_db()
    assert first.status == again.status == "succeeded", (first.error, again.error)
    with (
        PILImage.open(media_path(first.result_image.file.name)) as one,
        PILImage.open(media_path(again.result_image.file.name)) as two,
    ):
        assert pixel_difference(one, two) == 0
        fields = infotext_parse(one.text["parameters"])["fields"]
    assert fields["Denoising strength"] == "0.5" and fields["Seed"] == str(source.seed)
    sidecar = json.loads(media_path(first.result_image.file.name).with_suffix(".json").read_text())
    assert sidecar["denoising_strength"] == 0.5 and sidecar["init_image"] == source.result_image_id

    slot_pick(slot=aries, image=first.result_image)
    client.force_login(owner)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(reverse("albums:album-download", args=[album.pk])))))
    names = archive.namelist()
    assert len(names) == 12
    assert names == [f"{slot.index + 1:02d}-{slot.title.lower()}.png" for slot in slots]
    assert archive.read("01-aries.png") == media_path(first.result_image.file.name).read_bytes()
