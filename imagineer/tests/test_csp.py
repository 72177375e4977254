"""Content-Security-Policy and Permissions-Policy (issue 12, item 8).

There was no CSP and no Permissions-Policy anywhere, and ReDoc loaded fonts from Google (and
failed offline). The browser test opens every kind of page (ours, allauth's, the admin, the
browsable API, Swagger UI, ReDoc) in Chromium and fails on any CSP violation and on any
request that leaves the server; each page is also checked to still work (its scripts ran).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from albums.models import ScrapeJob
from generation.models import BatchGenerationRun, GenerationJob
from imagineer.tests.browser import watch
from imagineer.tests.factories import (
    AlbumImageFactory,
    BatchTemplateFactory,
    BatchTemplateLoraFactory,
    LabelFactory,
    UserFactory,
)
from training.models import TrainingRun

ROOT = Path(settings.BASE_DIR)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]
PASSWORD = "pw-test-123"  # UserFactory's


def policy(response) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {name: values for name, *values in directives}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/api/health", "/static/css/app.css", "/no-such-page/"])
def test_every_response_carries_a_strict_policy_and_a_permissions_policy(client, path):
    response = client.get(path)
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"][0] == "'self'" and directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    for values in directives.values():
        assert "'unsafe-inline'" not in values and "'unsafe-eval'" not in values and "*" not in values
        assert not any(value.startswith("http") for value in values)
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_a_nonce_is_sent_only_where_a_page_uses_one(api_as):
    client = api_as("viewer")
    redoc = client.get("/api/schema/redoc")
    nonce = re.search(r"'nonce-([^']+)'", redoc["Content-Security-Policy"]).group(1)
    assert f'nonce="{nonce}"' in redoc.content.decode()
    assert "fonts.googleapis.com" not in redoc.content.decode()
    assert "'nonce-" not in client.get("/").headers["Content-Security-Policy"]


def test_no_template_has_inline_script_handlers_or_style_attributes():
    """Inline script (other than JSON data), event handler attributes, style attributes and
    style elements without the response's nonce would all be blocked by the policy."""
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>|\son[a-z]+=|\sstyle=|<style(?![^>]*\bnonce=)"
    )
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in sorted((ROOT / "templates").rglob("*.html"))
        for match in inline.finditer(path.read_text())
    ]
    assert found == []


@pytest.mark.django_db
def test_violation_reports_are_logged_and_bounded(client, caplog):
    report = {
        "csp-report": {
            "document-uri": "http://testserver/albums/",
            "violated-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js",
        }
    }
    with caplog.at_level(logging.WARNING, logger="imagineer.csp"):
        response = client.post("/csp-report", json.dumps(report), content_type="application/csp-report")
    assert response.status_code == 204
    assert (
        "CSP violation on http://testserver/albums/: script-src-elem blocked https://evil.example/x.js" in caplog.text
    )
    assert client.post("/csp-report", "[1]", content_type="application/csp-report").status_code == 400
    assert client.post("/csp-report", "x" * 20_000, content_type="application/csp-report").status_code == 413
    assert client.get("/csp-report").status_code == 405


# --- every kind of page in a real browser -----------------------------------------------


@pytest.fixture
def browser_page() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (make test does).")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop lives in this thread
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(20_000)
            yield context.new_page()
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def world() -> dict[str, object]:
    curator = UserFactory.create(username="cspcurator", role="curator", is_staff=True, is_superuser=True)
    membership = AlbumImageFactory.create(album__created_by=curator, image__created_by=curator)
    LabelFactory.create(image=membership.image)
    template = BatchTemplateFactory.create(created_by=curator)
    BatchTemplateLoraFactory.create(template=template)
    run = BatchGenerationRun.objects.create(
        template=template,
        album=membership.album,
        created_by=curator,
        status="running",
        total_items=4,
        completed_items=1,
        template_snapshot={"name": template.name},
        theme="deco",
    )
    GenerationJob.objects.create(
        run=run,
        row_index=0,
        album=membership.album,
        prompt="a card",
        width=64,
        height=64,
        steps=2,
        guidance_scale=7.0,
        seed=1,
        created_by=curator,
        status="succeeded",
        result_image=membership.image,
    )
    training = TrainingRun.objects.create(
        album=membership.album,
        name="csp-lora",
        trigger_word="csp",
        base_model="tiny",
        learning_rate=1e-4,
        rank=4,
        alpha=4.0,
        dropout=0.0,
        max_steps=10,
        save_every=5,
        resolution=64,
        batch_size=1,
        gradient_accumulation=1,
        seed=1,
        created_by=curator,
        status=TrainingRun.Status.RUNNING,
        phase=TrainingRun.Phase.TRAINING,
        progress_done=4,
        started_at=timezone.now(),
        loss_history=[[1, 0.5], [2, 0.4], [3, 0.45], [4, 0.3]],
    )
    scrape = ScrapeJob.objects.create(
        start_urls=["http://example.com/"],
        album=membership.album,
        created_by=curator,
        status="running",
        max_images=10,
        images_downloaded=3,
    )
    return {
        "curator": curator,
        "album": membership.album,
        "image": membership.image,
        "template": template,
        "run": run,
        "training": training,
        "scrape": scrape,
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_kind_of_page_works_under_the_policy_in_a_browser(browser_page, live_server):
    from playwright.sync_api import expect

    page = browser_page
    watched = watch(page)
    ids = world()
    base = live_server.url

    # Signed out: sign-in, sign-up, password reset; then sign in through the form.
    for path in ("/accounts/signup/", "/accounts/password/reset/", "/accounts/login/"):
        page.goto(base + path)
    page.fill("input[name=login]", "cspcurator")
    page.fill("input[name=password]", PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").first.click()
    page.wait_for_url(f"{base}/")

    album, image, template = ids["album"].pk, ids["image"].pk, ids["template"]
    pages = [
        "/",
        "/templates/",
        f"/templates/{template.slug}/",
        "/albums/",
        f"/albums/{album}/",
        f"/albums/{album}/images/{image}/",
        "/generate/",
        "/jobs/",
        "/training/",
        f"/training/runs/{ids['training'].pk}/",
        f"/training/albums/{album}/new",
        "/scrape/",
        "/scrape/new",
        "/accounts/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/admin/",
        "/admin/generation/batchtemplate/",
        "/admin/generation/batchtemplate/add/",
        f"/admin/generation/batchtemplate/{template.pk}/change/",
        "/admin/albums/album/",
        f"/admin/albums/image/{image}/change/",
        f"/admin/auth/user/{ids['curator'].pk}/change/",
        "/api/albums",
        f"/api/albums/{album}",
        "/api/loras",
        f"/api/batch-templates/{template.pk}",
        "/api/config",
    ]
    for path in pages:
        response = page.goto(base + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")

    # Our scripts ran: HTMX polls the run's progress and app.js sets the bar's width.
    page.goto(f"{base}/runs/{ids['run'].pk}/")
    bar = page.locator("#run-progress .bar.done")
    expect(bar).to_have_attribute("data-percent", "25.0")
    page.wait_for_function("() => parseFloat(document.querySelector('#run-progress .bar.done').style.width) === 25")
    with page.expect_response(lambda response: "/progress" in response.url):
        pass  # HTMX asked again
    page.goto(f"{base}/scrape/{ids['scrape'].pk}/")
    page.wait_for_function("() => parseFloat(document.querySelector('.bar.done').style.width) === 30")
    # The admin's scripts ran: "select all" ticks every row and updates the counter.
    page.goto(f"{base}/admin/albums/album/")
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    # The browsable API's scripts ran: the OPTIONS button (jQuery + DRF's ajax form) answers in place.
    page.goto(f"{base}/api/albums")
    page.locator("form.button-form button", has_text="OPTIONS").click()
    expect(page.locator(".response-info")).to_contain_text("OPTIONS")
    # Swagger UI and ReDoc render the schema from vendored files.
    page.goto(f"{base}/api/schema/swagger-ui")
    expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
    page.goto(f"{base}/api/schema/redoc")
    expect(page.get_by_role("heading", name=re.compile("Imagineer API"))).to_be_visible(timeout=30_000)
    page.wait_for_load_state("networkidle")

    problems = watched.problems()
    assert problems == [], "\n".join(problems)
