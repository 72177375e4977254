"""The finish page and the finishing job page (Django test client; the browser test drives them end to end)."""

from __future__ import annotations

import pytest

from cards.models import FinishingJob
from cards.services.designs import design_create
from generation.models import GenerationJob
from generation.tests.decks_support import deck_build
from imagineer.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return UserFactory(role="creator")


def test_finish_page_lists_cards_without_a_pick_and_refuses_bad_input_next_to_the_field(client, owner, zodiac_template):
    design = design_create(template=zodiac_template, name="Plain", title_template="{sign}")
    album = deck_build(slots=3, takes=1, owner=owner, titles=["Aries", "Taurus", "Gemini"])
    GenerationJob.objects.filter(slot__album=album, slot__index=1).update(result_image=None, status="failed")
    client.force_login(owner)
    page = client.get(f"/cards/albums/{album.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Not finished, no pick yet: 2 Taurus" in text and "Finish the deck" in text
    assert f"/api/cards/designs/{design.pk}/preview.png" in text

    bad = client.post(
        f"/cards/albums/{album.pk}/",
        {"design": design.pk, "formats": ["zip"], "hires": "1", "hires_scale": "5"},
    )
    assert bad.status_code == 400 and "Hires scale must be between" in bad.content.decode()
    assert client.post(f"/cards/albums/{album.pk}/", {"design": "999"}).status_code == 400
    assert not FinishingJob.objects.exists()

    started = client.post(f"/cards/albums/{album.pk}/", {"design": design.pk, "formats": ["zip", "tts"]})
    job = FinishingJob.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/cards/jobs/{job.pk}/"
    assert job.formats == ["zip", "tts"] and job.created_by == owner
    progress = client.get(f"/cards/jobs/{job.pk}/progress").content.decode()
    assert 'data-status="queued"' in progress and "hx-get" in progress and "Cancel" in progress
    assert client.post(f"/cards/jobs/{job.pk}/cancel").status_code == 302
    job.refresh_from_db()
    assert job.status == FinishingJob.Status.CANCELLED
    finished = client.get(f"/cards/jobs/{job.pk}/progress").content.decode()
    assert "hx-get" not in finished and "Cancelled" in finished


def test_a_viewer_sees_the_page_but_cannot_finish(client, owner, zodiac_template):
    design_create(template=zodiac_template, name="Plain", title_template="{sign}")
    album = deck_build(slots=2, takes=1, owner=owner)
    viewer = UserFactory(role="viewer")
    client.force_login(viewer)
    page = client.get(f"/cards/albums/{album.pk}/")
    assert page.status_code == 200 and "Only the deck's owner or a curator" in page.content.decode()
    assert client.post(f"/cards/albums/{album.pk}/", {"design": "1"}).status_code == 403
