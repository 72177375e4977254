"""Generation pages: templates and the generate form, single generation, the jobs panel."""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from generation.models import BatchGenerationRun, GenerationJob
from imagineer.tests.factories import (
    AlbumImageFactory,
    BatchTemplateFactory,
    BatchTemplateLoraFactory,
    ImageFactory,
    LoraFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(client):
    user = UserFactory(role="creator")
    client.force_login(user)
    return user


@pytest.fixture
def viewer(client):
    user = UserFactory(role="viewer")
    client.force_login(user)
    return user


@pytest.fixture
def template():
    template = BatchTemplateFactory(name="Zodiac mini", slug="zodiac-mini", description="Three signs.")
    BatchTemplateLoraFactory(template=template, lora=LoraFactory(name="inkwash"), weight=Decimal("0.60"))
    return template


def test_template_list_shows_rows_size_and_lora_stack(client, viewer, template):
    response = client.get(reverse("generation:template-list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>Templates · Imagineer</title>" in body
    assert "Zodiac mini" in body and "Three signs." in body
    assert "3 rows · 64×64" in body and "inkwash @ 0.60" in body


def test_template_list_query_count_does_not_grow_with_templates(client, viewer, template):
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("generation:template-list"))
    for _ in range(8):
        BatchTemplateLoraFactory(template=BatchTemplateFactory())
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("generation:template-list"))
    assert len(many) == len(few)


def test_template_page_shows_rows_constructed_prompts_and_the_form(client, creator, template):
    body = client.get(reverse("generation:template-detail", args=[template.slug])).content.decode()
    assert "<title>Zodiac mini · Imagineer</title>" in body
    assert "a zodiac card, art deco, Taurus, earth element, high detail" in body
    assert 'placeholder="Empty: no theme (try e.g. “art deco”)"' in body
    assert "Random theme" in body and reverse("generation:theme-random") in body
    assert "inkwash weight" in body and 'value="0.60"' in body
    assert "Generate 3 images" in body


def test_template_page_tells_viewers_they_cannot_generate(client, viewer, template):
    url = reverse("generation:template-detail", args=[template.slug])
    body = client.get(url).content.decode()
    assert "Ask a curator for the creator role" in body and "Generate 3 images" not in body
    assert client.post(url, {"theme": "x", "seed_policy": "random"}).status_code == 403
    assert not BatchGenerationRun.objects.exists()


def test_generate_form_starts_a_run_with_the_overrides_and_goes_to_its_page(client, creator, template):
    lora_field = f"lora_{template.lora_stack.get().lora_id}"
    response = client.post(
        reverse("generation:template-detail", args=[template.slug]),
        {
            "theme": "stained glass",
            "album_name": "Glass signs",
            "steps": "2",
            "width": "64",
            "height": "64",
            "seed_policy": "increment",
            "seed": "100",
            lora_field: "0.75",
        },
    )
    run = BatchGenerationRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generation:run-detail", args=[run.pk])
    assert run.theme == "stained glass" and run.album.name == "Glass signs" and run.created_by == creator
    jobs = list(run.jobs.order_by("row_index"))
    assert [job.seed for job in jobs] == [100, 101, 102]
    assert {job.steps for job in jobs} == {2}
    assert jobs[0].lora_stack[0]["name"] == "inkwash" and jobs[0].lora_stack[0]["weight"] == "0.75"
    assert jobs[0].prompt == "a zodiac card, stained glass, Aries, fire element, high detail"


def test_generate_form_replaces_the_style_suffix_for_one_run(client, creator, template):
    url = reverse("generation:template-detail", args=[template.slug])
    assert 'placeholder="high detail"' in client.get(url).content.decode()
    client.post(url, {"theme": "glass", "seed_policy": "random", "first": "1", "style_suffix": "charcoal sketch"})
    run = BatchGenerationRun.objects.get()
    assert run.overrides["style_suffix"] == "charcoal sketch"
    assert run.jobs.order_by("row_index").first().prompt == "a zodiac card, glass, Aries, fire element, charcoal sketch"


def test_generate_form_shows_errors_next_to_the_field(client, creator, template):
    url = reverse("generation:template-detail", args=[template.slug])
    response = client.post(url, {"theme": "x", "steps": "0", "seed_policy": "random"})
    assert response.status_code == 400
    assert response.context["form"].errors["steps"] == ["Ensure this value is greater than or equal to 1."]
    # Rules only the service knows come back in its words, beside the field they are about.
    response = client.post(url, {"theme": "x", "width": "100", "seed_policy": "random"})
    assert response.status_code == 400
    assert response.context["form"].errors["width"] == ["Width 100 is not a multiple of 8; use 96 or 104."]
    body = response.content.decode()
    assert body.index("Width 100 is not a multiple of 8") > body.index('name="width"')
    assert 'class="field has-error"' in body
    assert not BatchGenerationRun.objects.exists()


def test_random_theme_button_fills_the_theme_input(client, creator, template):
    response = client.get(reverse("generation:theme-random"), {"template": template.slug})
    body = response.content.decode().strip()
    assert response.status_code == 200
    assert body.startswith("<input") and 'name="theme"' in body and 'value="' in body
    assert 'value=""' not in body


def test_single_generation_page_submits_a_job(client, creator):
    lora = LoraFactory(name="film-grain")
    url = reverse("generation:generate")
    body = client.get(url).content.decode()
    assert "<title>Generate an image · Imagineer</title>" in body and "film-grain" in body
    response = client.post(
        url,
        {
            "prompt": "a lighthouse in fog",
            "negative_prompt": "people",
            "width": "64",
            "height": "64",
            "steps": "2",
            "guidance_scale": "7",
            "seed": "5",
            f"lora_{lora.pk}": "0.5",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("generation:jobs")
    job = GenerationJob.objects.get()
    assert (job.prompt, job.seed, job.steps, job.created_by) == ("a lighthouse in fog", 5, 2, creator)
    assert job.lora_stack == [{"id": lora.pk, "name": "film-grain", "sha256": lora.sha256, "weight": "0.50"}]


def test_single_generation_errors_are_shown_by_their_fields(client, creator):
    response = client.post(
        reverse("generation:generate"),
        {"prompt": "", "width": "100", "height": "64", "steps": "2", "guidance_scale": "7"},
    )
    assert response.status_code == 400
    assert response.context["form"].errors["prompt"] == ["This field is required."]
    response = client.post(
        reverse("generation:generate"),
        {"prompt": "fog", "width": "100", "height": "64", "steps": "2", "guidance_scale": "7"},
    )
    assert response.context["form"].errors["width"] == ["Width 100 is not a multiple of 8; use 96 or 104."]
    assert not GenerationJob.objects.exists()


def test_single_generation_page_needs_the_generate_permission(client, viewer):
    assert client.get(reverse("generation:generate")).status_code == 403


def _job(**kwargs) -> GenerationJob:
    defaults = {"prompt": "a fox", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7.0, "seed": 9}
    return GenerationJob.objects.create(**{**defaults, **kwargs})


def test_jobs_panel_lists_queue_and_history_and_cancels(client, creator):
    queued = _job(prompt="waiting fox", created_by=creator)
    someone_elses = _job(prompt="another fox")
    done = _job(prompt="finished fox", status=GenerationJob.Status.SUCCEEDED, result_image=ImageFactory())
    failed = _job(prompt="broken fox", status=GenerationJob.Status.FAILED, error="CUDA out of memory")
    body = client.get(reverse("generation:jobs")).content.decode()
    assert "<title>Jobs · Imagineer</title>" in body
    assert body.index("waiting fox") < body.index("History") < body.index("finished fox")
    assert "CUDA out of memory" in body and "broken fox" in body
    assert reverse("generation:job-cancel", args=[queued.pk]) in body
    assert reverse("albums:image-thumbnail", args=[done.result_image_id]) in body
    assert reverse("generation:job-cancel", args=[failed.pk]) not in body
    assert reverse("generation:job-cancel", args=[someone_elses.pk]) not in body
    assert client.post(reverse("generation:job-cancel", args=[someone_elses.pk])).status_code == 403

    assert client.post(reverse("generation:job-cancel", args=[queued.pk])).status_code == 302
    queued.refresh_from_db()
    assert queued.status == GenerationJob.Status.CANCELLED
    client.post(reverse("generation:job-cancel", args=[queued.pk]))
    messages = [str(m) for m in client.get(reverse("generation:jobs")).context["messages"]]
    assert any("already finished" in message for message in messages)


def test_jobs_history_shows_each_cards_title_not_the_shared_prompt_start(client, creator):
    shared = "a playing card, art nouveau, ornate gold border, highly detailed, " * 3
    for title in ("Ace of Spades", "Two of Spades"):
        _job(
            prompt=shared + title,
            prompt_parts={"title": title, "row_text": f"{title}, one pip"},
            status=GenerationJob.Status.SUCCEEDED,
        )
    body = client.get(reverse("generation:jobs")).content.decode()
    assert "<strong>Ace of Spades</strong> · Ace of Spades, one pip" in body
    assert "<strong>Two of Spades</strong>" in body


def test_jobs_panel_query_count_does_not_grow_with_jobs(client, creator):
    _job()
    client.get(reverse("generation:jobs-panel"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("generation:jobs-panel")).status_code == 200
    for index in range(20):
        _job(status=GenerationJob.Status.SUCCEEDED if index % 2 else GenerationJob.Status.QUEUED)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("generation:jobs-panel"))
    assert len(many) == len(few)


def test_generate_again_repeats_the_recipe_or_takes_a_new_seed(client, creator):
    lora = LoraFactory(name="inkwash")
    image = AlbumImageFactory(image=ImageFactory()).image
    source = _job(
        prompt="a ram of gold",
        seed=1234,
        lora_stack=[{"id": lora.pk, "name": "inkwash", "sha256": lora.sha256, "weight": "0.60"}],
        status=GenerationJob.Status.SUCCEEDED,
        result_image=image,
    )
    url = reverse("generation:image-regenerate", args=[image.pk])
    assert client.post(url, {"seed": "same"}).status_code == 302
    again = GenerationJob.objects.exclude(pk=source.pk).get()
    assert (again.prompt, again.seed, again.steps, again.lora_stack[0]["weight"]) == ("a ram of gold", 1234, 2, "0.60")
    client.post(url, {"seed": "new"})
    newest = GenerationJob.objects.order_by("-id").first()
    assert newest.prompt == "a ram of gold" and newest.pk != again.pk
    assert GenerationJob.objects.filter(seed=1234).count() == 2 or newest.seed != 1234


def _run_with_items(template, creator, *, statuses: list[str]) -> BatchGenerationRun:
    from albums.services.curation import album_create

    album = album_create(name="Run album", source_type="batch_generation", created_by=creator)
    run = BatchGenerationRun.objects.create(
        template=template,
        template_snapshot={"name": template.name},
        theme="art deco",
        album=album,
        total_items=len(statuses),
        completed_items=statuses.count("succeeded"),
        failed_items=statuses.count("failed"),
        status=BatchGenerationRun.Status.RUNNING,
        created_by=creator,
    )
    for index, status in enumerate(statuses):
        image = None
        if status == GenerationJob.Status.SUCCEEDED:
            image = AlbumImageFactory(album=album, position=index).image
        _job(
            run=run,
            row_index=index,
            status=status,
            result_image=image,
            prompt=f"row {index} prompt",
            progress_done=1 if status == "running" else 0,
            error="NaN in latents" if status == "failed" else "",
        )
    return run


def test_run_page_polls_ever_more_slowly_while_nothing_changes(client, creator, template):
    run = _run_with_items(template, creator, statuses=["succeeded", "running"])
    url = reverse("generation:run-progress", args=[run.pk])
    waits = []
    since, wait = "", "1"
    for _ in range(6):
        response = client.get(url, {"since": since, "wait": wait})
        match = re.search(r'\?since=([^&"]*)&amp;wait=(\d+)"', response.content.decode())
        since, wait = unquote(match.group(1)), match.group(2)
        waits.append(int(wait))
    assert waits == [1, 2, 4, 8, 16, 16]  # the first answer is news; then nothing changes
    GenerationJob.objects.filter(run=run, status="running").update(progress_done=2)
    response = client.get(url, {"since": since, "wait": wait})
    assert 'hx-trigger="load delay:1s"' in response.content.decode()  # something moved: quick again
    assert client.get(url, {"since": since, "wait": "nonsense"}).status_code == 200


def test_run_page_shows_progress_thumbnails_and_cancel(client, creator, template):
    run = _run_with_items(template, creator, statuses=["succeeded", "failed", "running", "queued"])
    response = client.get(reverse("generation:run-detail", args=[run.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>Run" in body and "Zodiac mini · art deco" in body
    assert "<span data-done>1</span>/<span data-total>4</span> done" in body and "1 failed" in body
    assert (
        'aria-valuenow="1"' in body and 'data-percent="25.0"' in body
    )  # the width, set by app.js (CSP: no style attributes)
    assert "Now: #3 (step 1/2)" in body and "row 2 prompt" in body
    assert 'hx-trigger="load delay:1s"' in body
    image_id = run.jobs.get(row_index=0).result_image_id
    assert reverse("albums:image-thumbnail", args=[image_id]) in body
    assert reverse("albums:album-detail", args=[run.album_id]) in body
    assert reverse("generation:run-cancel", args=[run.pk]) in body
    assert reverse("generation:run-retry", args=[run.pk]) not in body
    assert "NaN in latents" in body

    assert client.post(reverse("generation:run-cancel", args=[run.pk])).status_code == 302
    run.refresh_from_db()
    # The running item has not stopped yet: the run is cancelling (and still polled) until it does.
    assert run.status == BatchGenerationRun.Status.CANCELLING
    partial = client.get(reverse("generation:run-progress", args=[run.pk])).content.decode()
    assert "hx-trigger" in partial and reverse("generation:run-cancel", args=[run.pk]) not in partial
    assert reverse("generation:run-retry", args=[run.pk]) in partial and "Retry 1 failed and 1 cancelled" in partial

    assert client.post(reverse("generation:run-retry", args=[run.pk])).status_code == 302
    # The failed and the cancelled item, and the running one: no live worker beats for it.
    assert run.jobs.filter(status="queued").count() == 3


def test_run_page_and_api_show_the_attempt_and_last_error_of_a_retried_item(client, creator, template, settings):
    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 3
    run = _run_with_items(template, creator, statuses=["running", "failed"])
    run.jobs.filter(row_index=0).update(attempts=2, error="worker lost (heartbeat stale)")
    run.jobs.filter(row_index=1).update(attempts=3)
    client.force_login(creator)
    body = client.get(reverse("generation:run-progress", args=[run.pk])).content.decode()
    assert "attempt 2 of 3" in body and "worker lost (heartbeat stale)" in body
    assert "attempt 3 of 3" in body and "NaN in latents" in body

    api = client.get(f"/api/batch-templates/{template.pk}/runs/{run.pk}")
    items = api.json()["progress"]["items"]
    assert [(item["attempts"], item["attempt_limit"], item["error"]) for item in items] == [
        (2, 3, "worker lost (heartbeat stale)"),
        (3, 3, "NaN in latents"),
    ]


def test_run_progress_query_count_does_not_grow_with_items(client, creator, template):
    small = _run_with_items(template, creator, statuses=["succeeded", "queued", "failed"])
    large = _run_with_items(template, creator, statuses=["succeeded", "queued", "failed"] * 10)
    client.get(reverse("generation:run-progress", args=[small.pk]))
    counts = []
    for run in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("generation:run-progress", args=[run.pk])).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_run_cancel_and_retry_need_the_generate_permission(client, viewer, template):
    run = _run_with_items(template, viewer, statuses=["queued"])
    body = client.get(reverse("generation:run-detail", args=[run.pk])).content.decode()
    assert reverse("generation:run-cancel", args=[run.pk]) not in body
    assert client.post(reverse("generation:run-cancel", args=[run.pk])).status_code == 403
    assert client.post(reverse("generation:run-retry", args=[run.pk])).status_code == 403


def test_home_shows_running_runs_albums_templates_and_the_noise_notice(client, creator, template, settings):
    settings.IMAGINEER_MODEL = ""
    run = _run_with_items(template, creator, statuses=["succeeded", "queued"])
    response = client.get(reverse("home"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>Home · Imagineer</title>" in body
    assert "makes noise, not pictures" in body
    assert reverse("generation:run-detail", args=[run.pk]) in body and 'value="1"' in body
    assert 'hx-trigger="every 2s"' in body
    assert "Run album" in body and reverse("albums:album-detail", args=[run.album_id]) in body
    assert "Zodiac mini" in body
    partial = client.get(reverse("generation:runs-active")).content.decode()
    assert reverse("generation:run-detail", args=[run.pk]) in partial


def test_the_rows_preview_follows_the_typed_theme_and_counts_clip_tokens(client, creator, template):
    from generation.models import BatchTemplate

    page = client.get(reverse("generation:template-detail", args=[template.slug])).content.decode()
    assert 'hx-get="/templates/zodiac-mini/rows"' in page and "Tokens" in page
    body = client.get(
        reverse("generation:template-rows", args=[template.slug]), {"theme": "neon noir"}
    ).content.decode()
    assert "with the theme “neon noir”" in body and "neon noir" in body
    BatchTemplate.objects.filter(pk=template.pk).update(style_suffix=", ".join(["intricate golden filigree"] * 30))
    long = client.get(reverse("generation:template-rows", args=[template.slug]), {"theme": "ink"}).content.decode()
    assert "chunk-break" in long and "chunks)" in long
