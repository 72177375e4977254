"""A deck made card by card in a real browser (Chromium via Playwright) with a real gpu worker:
try first 3 rows, complete, 3 more takes, vary a take, pick it by keyboard, compare two LoRA
weights and pick cells from both columns, then the zip: 12 cards in slot order named by title."""

from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal

import pytest

from albums.services.files import media_path
from generation.models import BatchGenerationRun, BatchTemplate, BatchTemplateLora, DeckSlot, GenerationJob
from generation.services.builtin import builtin_templates_load
from generation.tests.support import WORKER_ENV
from generation.tests.test_browser_pages import browser, page, shot, sign_in  # noqa: F401 - fixtures
from imagineer.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
LONG = 180_000


def test_a_zodiac_deck_card_by_card(page, live_server, celery_worker, engine, settings):  # noqa: F811
    from playwright.sync_api import expect

    from generation.engine.lora_make import lora_make_random
    from generation.services.loras import lora_register

    builtin_templates_load()
    # The tiny model at thumbnail size: the test is about the workflow, not the pictures.
    BatchTemplate.objects.filter(slug="zodiac").update(width=64, height=64, steps=2)
    template = BatchTemplate.objects.get(slug="zodiac")
    lora = lora_register(path=lora_make_random(engine.pipe, settings.LORA_ROOT / "inkwash.safetensors", seed=3))
    BatchTemplateLora.objects.create(template=template, lora=lora, weight=Decimal("0.6"))
    user = UserFactory(role="creator")
    celery_worker("gpu", extra_env=WORKER_ENV)
    base = live_server.url
    sign_in(page, base, user.username)

    # Try the first 3 rows.
    page.goto(f"{base}/templates/zodiac/")
    page.fill("input[name=theme]", "celestial ink")
    page.fill("input[name=album_name]", "Ink zodiac")
    page.select_option("select[name=try_mode]", "first")
    page.fill("input[name=try_count]", "3")
    page.get_by_role("button", name=re.compile(r"Generate 12 images")).click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    expect(page.locator("#run-progress [data-done]")).to_have_text("3", timeout=LONG)
    page.get_by_role("link", name=re.compile("Open album")).click()
    expect(page.locator(".deck-pick img")).to_have_count(3)
    expect(page.locator("#card-4")).to_contain_text("not made yet")
    shot(page, "deck-try-first")

    # Complete the deck into the same album; the page follows until every card has an image.
    page.get_by_role("button", name="Complete the deck").click()
    expect(page.locator(".deck-pick img")).to_have_count(12, timeout=LONG)
    album = BatchGenerationRun.objects.get().album
    titles = list(DeckSlot.objects.filter(album=album).order_by("index").values_list("title", flat=True))
    assert titles[:3] == ["Aries", "Taurus", "Gemini"] and len(titles) == 12

    # Three more takes of Aries, then vary the second take.
    card = page.locator("#card-1")
    card.locator("summary").click()
    card.locator("input[name=count]").fill("3")
    card.get_by_role("button", name="More takes").click()
    expect(page.locator("#card-1 .take img")).to_have_count(4, timeout=LONG)
    card.locator("summary").click()
    card.locator("select[name=image]").select_option(label="#2")
    card.locator("input[name=strength]").fill("0.5")
    card.get_by_role("button", name="Vary").click()
    expect(page.locator("#card-1 .take img")).to_have_count(5, timeout=LONG)
    expect(page.locator("#card-1 .take").nth(4)).to_contain_text("vary 0.5")
    shot(page, "deck-takes")

    # Pick the variation with the keyboard: focus the card, press 5.
    page.locator("#card-1").focus()
    page.keyboard.press("5")
    expect(page.locator("#card-1 .take.picked")).to_contain_text("#5")
    variation = GenerationJob.objects.filter(slot__album=album, slot__index=0, strength=0.5).get()
    assert DeckSlot.objects.get(album=album, index=0).pick_id == variation.result_image_id

    # Take #2 and its variation side by side: the strength and source rows are marked; pick by key.
    page.get_by_label("Compare take 2", exact=True).check()
    page.get_by_label("Compare take 5", exact=True).check()
    card.get_by_role("button", name="Compare takes side by side").click()
    expect(page.locator(".compare .take img")).to_have_count(2)
    expect(page.locator(".recipe-compare tr.differs")).to_contain_text(["Denoising strength", "Varied from"])
    shot(page, "deck-compare")
    page.locator(".compare").focus()
    page.keyboard.press("1")
    expect(page.locator(".compare .take.picked")).to_contain_text("Take #2")
    page.locator(".compare").focus()
    page.keyboard.press("2")
    expect(page.locator(".compare .take.picked")).to_contain_text("Take #5")
    assert DeckSlot.objects.get(album=album, index=0).pick_id == variation.result_image_id

    # Compare two LoRA weights on the first 3 rows; pick a cell of each column into the deck.
    page.goto(f"{base}/templates/zodiac/")
    page.get_by_role("link", name="Compare variants of this deck").click()
    page.fill("input[name=theme]", "celestial ink")
    page.fill("input[name=first]", "3")
    page.fill("input[name=lora_0_1]", "0.2")
    page.fill("input[name=lora_0_2]", "1.2")
    page.get_by_role("button", name="Start the comparison").click()
    page.wait_for_url(re.compile(r"/comparisons/\d+/$"))
    expect(page.locator(".board thead")).to_contain_text("LoRA inkwash 0.2")
    expect(page.locator(".board thead")).to_contain_text("LoRA inkwash 1.2")
    expect(page.locator(".board tbody img")).to_have_count(6, timeout=LONG)
    shot(page, "comparison-board")
    picks = {}
    for row, column in ((1, 0), (2, 1)):
        page.select_option("select[name=into]", label="Ink zodiac")
        button = page.locator(".board tbody tr").nth(row).locator("td").nth(column).get_by_role("button").first
        picks[row] = int(button.get_attribute("value").split(":")[1])
        button.click()
        expect(page.locator(".messages")).to_contain_text(f"Picked for card {row + 1}")
    slots = {slot.index: slot for slot in DeckSlot.objects.filter(album=album)}
    assert (slots[1].pick_id, slots[2].pick_id) == (picks[1], picks[2])
    compared = BatchGenerationRun.objects.exclude(album=album).order_by("variant")
    assert [run.jobs.first().lora_stack[0]["weight"] for run in compared] == ["0.20", "1.20"]

    # The zip: 12 cards in slot order, named by title, holding the picks.
    response = page.request.get(f"{base}/albums/{album.pk}/download.zip")
    assert response.ok
    archive = zipfile.ZipFile(io.BytesIO(response.body()))
    assert archive.namelist() == [f"{index + 1:02d}-{title.lower()}.png" for index, title in enumerate(titles)]
    from albums.models import Image

    expected = {
        "01-aries.png": variation.result_image,
        "02-taurus.png": Image.objects.get(pk=picks[1]),
        "03-gemini.png": Image.objects.get(pk=picks[2]),
    }
    for name, image in expected.items():
        assert archive.read(name) == media_path(image.file.name).read_bytes(), name
