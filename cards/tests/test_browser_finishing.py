"""Finishing a zodiac deck in a real browser (Chromium via Playwright) against a live server, with a
real default-queue Celery worker doing the work; every export is downloaded and read back."""

from __future__ import annotations

import re
import zipfile

import pytest
from PIL import Image as PILImage

from cards.models import FinishedCard, FinishingJob
from cards.services.designs import design_create
from generation.tests.decks_support import deck_build
from generation.tests.test_browser_pages import browser, page, shot, sign_in  # noqa: F401 - fixtures
from imagineer.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SIGNS = ["Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo", "Libra", "Scorpio", "Sagittarius", "Capricorn"]
SIGNS += ["Aquarius", "Pisces"]


def test_finish_a_zodiac_deck_and_download_each_export(page, live_server, celery_worker, zodiac_template, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    user = UserFactory(role="creator")
    album = deck_build(slots=12, takes=1, owner=user, titles=SIGNS)
    design_create(template=zodiac_template, name="Zodiac poker", title_template="{sign}", frame_width_mm=2)
    celery_worker("default")
    base = live_server.url

    sign_in(page, base, user.username)
    page.goto(f"{base}/albums/{album.pk}/")
    page.get_by_role("link", name="Finish cards").click()
    expect(page).to_have_title(re.compile("Finish cards"))
    preview = page.locator("#card-preview")
    expect(preview).to_have_attribute("src", re.compile(r"preview\.png\?album=\d+&index=1$"))
    expect(preview).to_have_js_property("naturalHeight", 420)
    # Choosing another card shows that card.
    page.select_option("#id_preview_index", "5")
    expect(preview).to_have_attribute("src", re.compile(r"index=5$"))
    expect(preview).to_have_js_property("complete", True)
    expect(preview).to_have_js_property("naturalHeight", 420)
    shot(page, "cards-finish")

    page.get_by_role("button", name="Finish the deck").click()
    page.wait_for_url(re.compile(r"/cards/jobs/\d+/$"))
    progress = page.locator("#job-progress")
    expect(progress).to_have_attribute("data-status", "succeeded", timeout=120_000)
    shot(page, "cards-finished")
    job = FinishingJob.objects.get()
    assert FinishedCard.objects.filter(album=album, side=FinishedCard.Side.FRONT).count() == 12

    links = page.locator("[data-export]")
    expect(links).to_have_count(6)
    names = [links.nth(i).get_attribute("data-export") for i in range(6)]
    assert names == ["zip", "mpc", "drivethru", "pnp-a4", "pnp-letter", "tts"]
    for name in names:
        with page.expect_download() as info:
            page.locator(f"[data-export='{name}']").click()
        target = tmp_path / info.value.suggested_filename
        info.value.save_as(target)
        assert target.name.startswith(album.slug)
        if name in ("zip", "mpc", "tts"):
            with zipfile.ZipFile(target) as archive:
                members = archive.namelist()
            if name == "zip":
                assert members[0] == "001-aries.png" and "back.png" in members and len(members) == 13
            else:
                assert len(members) >= 2
        else:
            assert target.read_bytes().startswith(b"%PDF")
    with (
        zipfile.ZipFile(tmp_path / f"{album.slug}-cards.zip") as archive,
        archive.open("012-pisces.png") as handle,
        PILImage.open(handle) as card,
    ):
        assert card.size == (815, 1110)
    assert job.result["missing"] == []
