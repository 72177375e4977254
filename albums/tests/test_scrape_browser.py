"""The scrape pages in a real browser (Debian's Chromium via Playwright) against a live server
and a real ``default`` worker: start a scrape from the form, watch the progress fill in place
(HTMX polling), and cancel a slow one.

The worker only ever gets 127.0.0.1 URLs; the browser is checked to ask nothing off the server.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from albums.models import Image, ScrapeJob
from albums.tests.scrape_site import picture, site_running
from imagineer.tests.browser import watch
from imagineer.tests.factories import UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]
PASSWORD = "pw-test-123"  # UserFactory's
WORKER_ENV = {"IMAGINEER_SCRAPE_ALLOW_LOOPBACK": "true", "IMAGINEER_SCRAPE_HOST_DELAY_MS": "100"}


@pytest.fixture
def page() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does).")
    # Playwright's sync API keeps an event loop in this thread; the live server's ORM calls
    # happen in its own thread, but Django's guard looks at the calling thread's loop.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    outside: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(20_000)
            page = context.new_page()
            watched = watch(page)  # Content-Security-Policy violations
            page.on(
                "request",
                lambda request: (
                    None
                    if re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", request.url)
                    else outside.append(request.url)
                ),
            )
            yield page
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    assert not outside, f"the pages asked for something off the server: {outside}"
    assert watched.problems() == []


def test_start_follow_and_cancel_a_scrape(page, live_server, celery_worker, settings):
    from playwright.sync_api import expect

    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True  # the form checks start URLs in the live server
    user = UserFactory(role="creator")
    base = live_server.url
    with site_running() as site, site_running() as slow:
        site.add("/robots.txt", "", "text/plain")
        for number in range(5):
            site.add_image(f"/{number}.png", picture(1200 + number))
        site.add("/", "".join(f'<img src="/{number}.png" alt="picture {number}">' for number in range(5)))
        # A site that asks for a second between requests: slow enough to cancel.
        slow.add("/robots.txt", "User-agent: *\nCrawl-delay: 1\n", "text/plain")
        for number in range(10):
            slow.add_image(f"/{number}.png", picture(1300 + number))
        slow.add("/", "".join(f'<img src="/{number}.png">' for number in range(10)))
        celery_worker("default", extra_env=WORKER_ENV)

        page.goto(f"{base}/")
        page.fill("input[name=login]", user.username)
        page.fill("input[name=password]", PASSWORD)
        page.locator("form:has(input[name=password]) [type=submit]").first.click()
        page.wait_for_url(f"{base}/")

        page.get_by_role("link", name="Scrape", exact=True).click()
        page.get_by_role("link", name="Collect images").click()
        expect(page).to_have_title("Scrape images · Imagineer")
        page.fill("textarea[name=start_urls]", "http://10.0.0.1/")
        page.fill("input[name=album_name]", "Browser refs")
        page.get_by_role("button", name="Start scraping").click()
        expect(page.get_by_text("10.0.0.1 is a private address")).to_be_visible()

        page.fill("textarea[name=start_urls]", site.url("/"))
        page.fill("input[name=min_width]", "32")
        page.fill("input[name=min_height]", "32")
        page.get_by_role("button", name="Start scraping").click()
        page.wait_for_url(re.compile(r"/scrape/\d+/$"))
        progress = page.locator("#scrape-progress")
        expect(progress.locator("[data-downloaded]")).to_have_text("5", timeout=60_000)
        expect(progress).to_have_attribute("data-status", "succeeded")
        expect(progress.locator(".image-grid img")).to_have_count(5)
        expect(progress).not_to_have_attribute("hx-get", re.compile("."))  # polling stopped
        assert Image.objects.filter(albums__name="Browser refs").count() == 5

        page.goto(f"{base}/scrape/new")
        page.fill("textarea[name=start_urls]", slow.url("/"))
        page.fill("input[name=album_name]", "Slow refs")
        page.fill("input[name=min_width]", "32")
        page.fill("input[name=min_height]", "32")
        page.get_by_role("button", name="Start scraping").click()
        page.wait_for_url(re.compile(r"/scrape/\d+/$"))
        expect(progress.locator("[data-downloaded]")).to_have_text("1", timeout=60_000)
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#scrape-progress")).to_have_attribute("data-status", "cancelled", timeout=30_000)

    job = ScrapeJob.objects.get(album__name="Slow refs")
    assert job.status == ScrapeJob.Status.CANCELLED
    assert 1 <= job.images_downloaded < 10
    # Playwright's sync API runs this body in a greenlet with its own context, so its database
    # connection is not the one pytest-django closes: close it, or the test database cannot be
    # dropped at the end of the session.
    connections.close_all()
