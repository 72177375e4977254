"""The pages in a real browser: Debian's Chromium driven by Playwright against a live server,
with a real gpu worker generating the zodiac set with the tiny model.

Screenshots of the main pages land in ``artifacts/screenshots/`` (ignored by git).
Chromium comes from apt (``scripts/ensure-chromium.sh``, run by ``make test``), never from
``playwright install``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from albums.models import AlbumImage, Image
from generation.models import BatchGenerationRun
from generation.services.builtin import builtin_templates_load
from imagineer.tests.browser import watch
from imagineer.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
PASSWORD = "pw-test-123"  # UserFactory's
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does).")
    # Playwright's sync API keeps an event loop in this thread; the live server's ORM calls
    # happen in its own thread, but Django's guard looks at the calling thread's loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watched = watch(page)  # Content-Security-Policy violations
    # Offline by design: any request off the live server is a bug (a CDN, a web font...).
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url)
            if "127.0.0.1" not in request.url and "localhost" not in request.url and not request.url.startswith("data:")
            else None
        ),
    )
    yield page
    context.close()
    assert not outside, f"pages asked for something off the server: {outside}"
    assert watched.problems() == []


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").first.click()
    page.wait_for_url(f"{base_url}/")


def test_generate_the_zodiac_set_and_browse_it(page, live_server, celery_worker):
    from playwright.sync_api import expect

    builtin_templates_load()
    user = UserFactory(role="creator")
    celery_worker("gpu")
    base = live_server.url

    sign_in(page, base, user.username)
    expect(page.get_by_text("makes noise, not pictures")).to_be_visible()
    expect(page).to_have_title("Home · Imagineer")

    page.get_by_role("link", name="Templates", exact=True).click()
    expect(page).to_have_title("Templates · Imagineer")
    shot(page, "templates")
    page.get_by_role("link", name="Zodiac Signs").click()
    expect(page).to_have_title("Zodiac Signs · Imagineer")
    theme = page.locator("input[name=theme]")
    expect(theme).to_have_value("")
    page.get_by_role("button", name="Random theme").click()
    expect(page.locator("input[name=theme]")).not_to_have_value("")
    page.locator("input[name=theme]").fill("art deco gold")
    page.fill("input[name=album_name]", "Deco zodiac")
    page.get_by_text("Overrides").click()
    page.fill("input[name=steps]", "2")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    shot(page, "template-generate-form")
    page.get_by_role("button", name=re.compile(r"Generate 12 images")).click()

    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    expect(page.locator("#run-progress [data-total]")).to_have_text("12")
    # The bar fills in place (HTMX polling), thumbnails appear as images finish.
    expect(page.locator("#run-progress .image-grid img").first).to_be_visible(timeout=120_000)
    shot(page, "run-progress")
    expect(page.locator("#run-progress [data-done]")).to_have_text("12", timeout=180_000)
    expect(page.locator("#run-progress")).to_have_attribute("data-status", "completed")
    expect(page.locator("#run-progress .image-grid img")).to_have_count(12)
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "12")
    shot(page, "run-complete")
    run = BatchGenerationRun.objects.get()
    assert (run.completed_items, run.failed_items, run.theme) == (12, 0, "art deco gold")

    page.get_by_role("link", name=re.compile("Open album")).click()
    expect(page).to_have_title("Deco zodiac · Imagineer")
    # A generated album opens as its deck: one card per row, each showing its pick.
    tiles = page.locator(".deck-pick img")
    expect(tiles).to_have_count(12)
    for index in range(12):  # every thumbnail really loads, at its own aspect ratio
        tiles.nth(index).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=tiles.nth(index).element_handle())
    shot(page, "album")

    memberships = list(AlbumImage.objects.filter(album=run.album).order_by("position", "id"))
    page.locator(".deck-pick a").first.click()
    expect(page).to_have_title(re.compile(r"Deco zodiac · Imagineer$"))
    expect(page.get_by_text("Image 1 of 12 in Deco zodiac")).to_be_visible()
    expect(page.get_by_text("art deco gold", exact=True)).to_be_visible()
    shot(page, "image")
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"/images/{memberships[1].image_id}/$"))
    expect(page.get_by_text("Image 2 of 12 in Deco zodiac")).to_be_visible()
    page.keyboard.press("ArrowRight")
    page.wait_for_url(re.compile(rf"/images/{memberships[2].image_id}/$"))
    page.keyboard.press("ArrowLeft")
    page.wait_for_url(re.compile(rf"/images/{memberships[1].image_id}/$"))

    # An NSFW image is blurred on the deck page until the viewer clicks to reveal it.
    Image.objects.filter(pk=memberships[3].image_id).update(is_nsfw=True, nsfw_rating="ADULT")
    page.goto(f"{base}/albums/{run.album_id}/")
    nsfw_tile = page.locator(".deck-pick.nsfw")
    expect(nsfw_tile).to_have_count(1)
    blurred = nsfw_tile.locator("img")
    assert "blur" in blurred.evaluate("img => getComputedStyle(img).filter")
    assert "blur" not in tiles.first.evaluate("img => getComputedStyle(img).filter")
    shot(page, "album-nsfw-blurred")
    nsfw_tile.get_by_role("button", name=re.compile("Reveal NSFW")).click()
    expect(nsfw_tile).to_have_class(re.compile(r"\brevealed\b"))
    assert blurred.evaluate("img => getComputedStyle(img).filter") == "none"
    shot(page, "album-nsfw-revealed")

    page.get_by_role("link", name="Home", exact=True).click()
    expect(page.locator(".album-card", has_text="Deco zodiac")).to_be_visible()
    shot(page, "home")
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("#jobs-panel")).to_contain_text("Deco zodiac")
    shot(page, "jobs")
    page.get_by_role("link", name="Generate", exact=True).click()
    page.fill("textarea[name=prompt]", "a lighthouse in fog")
    page.fill("input[name=width]", "100")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator(".field.has-error")).to_contain_text("Width 100 is not a multiple of 8; use 96 or 104.")
    shot(page, "generate-error")

    # A phone-sized screen: no sideways scrolling, images keep their shape.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/albums/{run.album_id}/images/{memberships[0].image_id}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    natural, shown = page.locator("#main-image").evaluate(
        "img => [img.naturalWidth / img.naturalHeight, img.clientWidth / img.clientHeight]"
    )
    assert abs(natural - shown) < 0.02
    shot(page, "image-phone")
    page.goto(f"{base}/")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "home-phone")


def test_dropping_a_png_on_the_generate_page_fills_the_form(page, live_server):
    import base64

    from generation.tests import recipe_pngs

    user = UserFactory(role="creator")
    sign_in(page, live_server.url, user.username)
    page.goto(f"{live_server.url}/generate/")
    png = base64.b64encode(recipe_pngs.novelai_png()).decode()
    # What a browser does when a file is dragged in from the desktop and let go over the page.
    page.evaluate(
        """(b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "queen.png", { type: "image/png" }));
            const target = document.querySelector("h1");
            for (const type of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        png,
    )
    page.wait_for_url(f"{live_server.url}/generate/import")
    assert "Read a recipe made by NovelAI" in page.inner_text("#recipe-imported")
    assert page.input_value("#id_prompt") == "a playing card, queen of hearts"
    assert page.input_value("#id_negative_prompt") == "lowres, bad anatomy"
    assert (page.input_value("#id_width"), page.input_value("#id_height")) == ("512", "768")
    assert (page.input_value("#id_steps"), page.input_value("#id_seed")) == ("28", "1234")
    assert page.input_value("#id_scheduler") == "euler-a"
    shot(page, "generate-recipe-import")

    # A file that is not a PNG: the page says why, next to the import form.
    page.set_input_files("#recipe-file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"not a png"}])
    page.wait_for_selector("#recipe-import-error")
    assert "not a PNG file" in page.inner_text("#recipe-import-error")
