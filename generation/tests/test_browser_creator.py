"""Issue 17's creator walk, in Chromium, never opening /admin/: a new template from a pasted CSV
with a non-Latin column, previewed with a typed theme, a LoRA uploaded on the LoRA page picked
into its stack, a run of it, two images uploaded into a new album, a caption edited, an image
found by its tag through the search box. No page answers 4xx/5xx or logs a console error, at
1280 px and (every page again) at 390 px."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image as PILImage

from albums.models import Album
from generation.models import BatchGenerationRun, BatchTemplate, Lora
from generation.services.builtin import builtin_templates_load
from generation.tests.test_browser_pages import CHROMIUM, CHROMIUM_ARGS, PASSWORD, TIMEOUT_MS
from imagineer.tests.browser import watch
from imagineer.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSV = "знак,element\nAries,fire\nTaurus,earth\n"
# A finger moving 200 px to the left across the page.
SWIPE_LEFT = """() => {
  const touch = (x) => new Touch({identifier: 1, target: document.body, clientX: x, clientY: 300});
  document.dispatchEvent(new TouchEvent("touchstart", {touches: [touch(300)], changedTouches: [touch(300)], bubbles: true}));
  document.dispatchEvent(new TouchEvent("touchend", {touches: [], changedTouches: [touch(100)], bubbles: true}));
}"""


def _png(path: Path, seed: int) -> Path:
    import random

    rng = random.Random(seed)
    picture = PILImage.new("RGB", (64, 64))
    picture.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 64)])
    picture.save(path)
    return path


class Watched:
    """A page whose bad answers and console errors are collected, with the pages it visited."""

    def __init__(self, browser, width: int) -> None:
        phone = width < 800
        self.context = browser.new_context(viewport={"width": width, "height": 900}, has_touch=phone, is_mobile=phone)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.watched = watch(self.page)
        self.bad: list[str] = []
        self.errors: list[str] = []
        self.visited: list[str] = []
        self.page.on("response", lambda r: self.bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.on(
            "console", lambda m: self.errors.append(f"{self.page.url}: {m.text}") if m.type == "error" else None
        )
        self.page.on("framenavigated", lambda f: self.visited.append(f.url) if f == self.page.main_frame else None)

    def check(self) -> None:
        assert self.bad == [] and self.errors == [] and self.watched.problems() == []
        assert not any("/admin/" in url for url in self.visited)


def _sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").first.click()
    page.wait_for_url(f"{base}/")


def test_a_creator_does_everything_on_the_pages(live_server, celery_worker, tiny_model_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from generation.engine.lora_make import lora_make_random
    from generation.engine.runtime import Engine
    from generation.engine.source import ModelSource

    pipe = (
        Engine(
            ModelSource(kind="tiny", location=str(tiny_model_dir), model_id="imagineer/tiny-sd15-random"),
            device="cpu",
            dtype="fp32",
            batch_size=1,
        )
        .load()
        .pipe
    )
    lora_file = lora_make_random(pipe, tmp_path / "ink_wash.safetensors", rank=2, seed=3)
    user = UserFactory(role="creator")
    celery_worker("gpu")
    base = live_server.url
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        wide = Watched(browser, 1280)
        page = wide.page
        _sign_in(page, base, user.username)

        # The LoRA page: upload, then give it trigger words.
        page.get_by_role("link", name="LoRAs", exact=True).click()
        page.set_input_files("input[name=file]", str(lora_file))
        page.get_by_role("button", name="Upload").click()
        expect(page.locator("h1")).to_have_text("ink wash")
        page.fill("input[name=trigger_words]", "inkwash style")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Saved.")).to_be_visible()

        # The template editor: pasted CSV with a non-Latin column, a live preview with a typed theme.
        page.get_by_role("link", name="Templates", exact=True).click()
        page.get_by_role("link", name="New template").click()
        page.fill("input[name=name]", "Signs by hand")
        page.fill("textarea[name=csv_text]", CSV)
        page.locator("textarea[name=csv_text]").dispatch_event("change")
        rows = page.locator("[data-rows-editor] tbody tr")
        expect(rows).to_have_count(2)
        # The table edits the CSV: add a row and fill it, move it up, delete it again.
        page.get_by_role("button", name="Add a row").click()
        rows.nth(2).locator("input").first.fill("Gemini")
        page.get_by_role("button", name="Move row 3 up").click()
        expect(page.locator("textarea[name=csv_text]")).to_have_value(
            "знак,element\nAries,fire\nGemini,\nTaurus,earth\n"
        )
        page.get_by_role("button", name="Delete row 2").click()
        expect(rows).to_have_count(2)
        expect(page.locator("textarea[name=csv_text]")).to_have_value(CSV)
        page.fill("textarea[name=prompt_template]", "{знак}, {color}")
        expect(page.locator("#template-preview")).to_contain_text("Unknown placeholder {color}")
        # ... and beside the field itself, before saving; gone once fixed.
        expect(page.locator("#id_prompt_template_error")).to_contain_text("Unknown placeholder {color}")
        page.fill("textarea[name=prompt_template]", "{знак}, {element} element")
        page.fill("input[name=preview_theme]", "stained glass")
        expect(page.locator("#template-preview")).to_contain_text("stained glass, Aries, fire element")
        expect(page.locator("#id_prompt_template_error")).to_be_empty()
        expect(page.locator("#template-preview .tokens").first).to_have_text(re.compile(r"^\d+"))
        for name, value in (("width", "64"), ("height", "64"), ("steps", "2")):
            page.fill(f"input[name={name}]", value)
        page.fill("[data-lora-search]", "ink")
        page.get_by_role("button", name="+ inkwash style").click()
        expect(page.locator("textarea[name=base_prompt]")).to_have_value("inkwash style")
        page.get_by_role("button", name="Save template").click()
        expect(page).to_have_title("Signs by hand · Imagineer")
        template = BatchTemplate.objects.get(name="Signs by hand")
        assert template.columns == ["знак", "element"]
        assert [entry.lora.name for entry in template.lora_stack.all()] == ["ink wash"]

        # Run it.
        page.fill("input[name=theme]", "stained glass")
        page.get_by_role("button", name=re.compile(r"Generate 2 images")).click()
        page.wait_for_url(re.compile(r"/runs/\d+/$"))
        expect(page.locator("#run-progress")).to_have_attribute("data-status", "completed", timeout=180_000)
        run = BatchGenerationRun.objects.get()
        assert run.completed_items == 2 and run.jobs.first().lora_stack[0]["name"] == "ink wash"

        # Two images into a new album, then a caption and a tag by hand.
        page.get_by_role("link", name="Albums", exact=True).click()
        page.get_by_role("link", name="New album from your images").click()
        page.fill("input[name=name]", "My photos")
        page.set_input_files("input[name=images]", [str(_png(tmp_path / f"p{i}.png", i)) for i in (1, 2)])
        page.get_by_role("button", name="Create album and upload").click()
        expect(page.get_by_text("2 images added.")).to_be_visible()
        expect(page.locator(".image-grid .tile")).to_have_count(2)
        page.locator(".image-grid .tile a").first.click()
        page.get_by_text("Edit caption and tags").click()
        page.fill("textarea[name=caption]", "a harbour at dusk")
        page.fill("input[name=tags]", "harbour, dusk")
        page.get_by_role("button", name="Save caption and tags").click()
        expect(page.get_by_text("Caption and tags saved.")).to_be_visible()
        expect(page.locator("dd", has_text="a harbour at dusk")).to_contain_text(f"by {user.username}")

        # The search box finds it by its tag.
        page.fill("#site-search-q", "harbour")
        page.locator("form.site-search button").click()
        expect(page.locator(".search-results .tile")).to_have_count(1)
        expect(page.get_by_role("heading", name="1 image")).to_be_visible()
        wide.check()

        # Every page again on a phone-sized screen.
        narrow = Watched(browser, 390)
        _sign_in(narrow.page, base, user.username)
        for url in dict.fromkeys(u for u in wide.visited if "/accounts/" not in u):
            narrow.page.goto(url)
            width = narrow.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 400, f"{url} scrolls sideways at 390 px ({width} px wide)"

        # The playing-card deck's template page folds its 54 prompts on a phone (it was 44,000 px tall).
        builtin_templates_load()
        narrow.page.goto(f"{base}/templates/{BatchTemplate.objects.get(name='Playing Card Deck').slug}/")
        height = narrow.page.evaluate("document.documentElement.scrollHeight")
        print(f"playing-card template page at 390 px: {height} px tall")
        assert height < 8000
        narrow.page.locator("details.row-prompt summary").first.click()
        expect(narrow.page.locator("details.row-prompt").first).to_have_attribute("open", "")

        # A swipe moves between an album's images, as the arrow keys do.
        album = Album.objects.get(name="My photos")
        first, second = [m.image_id for m in album.memberships.order_by("position", "id")]
        narrow.page.goto(f"{base}/albums/{album.pk}/images/{first}/")
        narrow.page.evaluate(SWIPE_LEFT)
        narrow.page.wait_for_url(re.compile(rf"/images/{second}/$"))
        narrow.check()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert Lora.objects.count() == 1
