"""Per-user limits on queued work (issue 12, item 11): 429 with what is running and when to retry.

One creator queued 43 runs / 50,387 jobs in five minutes. No worker runs here: started work
stays queued, which is exactly what the limits count.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.services import token_create
from albums.models import Album, ScrapeJob
from generation.models import BatchGenerationRun, BatchTemplate, GenerationJob
from generation.tests.test_admin import form_data
from imagineer.tests.factories import (
    AlbumFactory,
    AlbumImageFactory,
    BatchTemplateFactory,
    LabelingJobFactory,
    ScrapeJobFactory,
    TrainingRunFactory,
    UserFactory,
)
from labeling.models import LabelingJob
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def start_run(client, template, theme: str = "deco"):
    return client.post(f"/api/batch-templates/{template.pk}/generate", {"theme": theme}, format="json")


def test_runs_over_the_limit_are_429s_that_name_them_and_create_nothing(api_as, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_RUNS = 2
    client = api_as("creator")
    template = BatchTemplateFactory(name="Zodiac mini")
    assert [start_run(client, template).status_code for _ in range(2)] == [202, 202]
    albums = Album.objects.count()

    refused = start_run(client, template)

    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"  # nothing has finished yet: no pace to go by
    error = refused.json()["error"]
    assert error["code"] == "limit_exceeded"
    first, second = BatchGenerationRun.objects.order_by("pk")
    assert error["message"] == (
        f"You already have 2 batch runs queued or running: run {first.pk} of 'Zodiac mini' (0/3 done); "
        f"run {second.pk} of 'Zodiac mini' (0/3 done). The limit is 2 per user (IMAGINEER_LIMIT_ACTIVE_RUNS). "
        "Try again when 1 of them has finished (check again in 60 seconds), or cancel some."
    )
    assert BatchGenerationRun.objects.count() == 2 and Album.objects.count() == albums
    # Another user is not held back by this one's work.
    assert start_run(api_as("creator"), template).status_code == 202
    # Finished work does not count.
    BatchGenerationRun.objects.filter(pk=first.pk).update(status=BatchGenerationRun.Status.COMPLETED)
    assert start_run(client, template).status_code == 202


def test_queued_images_count_runs_and_single_jobs_and_retry_after_follows_the_pace(api_as, settings):
    settings.IMAGINEER_LIMIT_QUEUED_JOBS = 5
    client = api_as("creator")
    now = timezone.now()
    for _ in range(3):  # the installation's recent pace: 12 seconds an image
        GenerationJob.objects.create(
            prompt="done",
            width=64,
            height=64,
            steps=2,
            guidance_scale=7,
            seed=1,
            status="succeeded",
            started_at=now - timedelta(seconds=30),
            finished_at=now - timedelta(seconds=18),
        )
    assert start_run(client, BatchTemplateFactory()).status_code == 202  # 3 images
    assert client.post("/api/generate", {"prompt": "owl"}, format="json").status_code == 202  # 4

    too_many = start_run(client, BatchTemplateFactory())  # 4 + 3 > 5

    assert too_many.status_code == 429
    assert too_many["Retry-After"] == "24"  # two images must finish, 12 s each
    message = too_many.json()["error"]["message"]
    assert "You already have 4 images queued or running: from 1 batch run and 1 single image." in message
    assert "Try again when 2 of them have finished (in about 24 seconds)" in message
    assert client.post("/api/generate", {"prompt": "owl"}, format="json").status_code == 202  # 5: at the limit
    assert client.post("/api/generate", {"prompt": "owl"}, format="json").status_code == 429
    assert GenerationJob.objects.filter(status="queued").count() == 5


def test_retrying_a_finished_run_counts_against_the_limit_too(api_as, settings):
    """Otherwise: start runs, cancel them, start more, and retry the cancelled ones."""
    settings.IMAGINEER_LIMIT_ACTIVE_RUNS = 1
    client = api_as("creator")
    template = BatchTemplateFactory()
    assert start_run(client, template).status_code == 202
    first = BatchGenerationRun.objects.get()
    first.jobs.update(status="cancelled")
    BatchGenerationRun.objects.filter(pk=first.pk).update(status="cancelled")
    assert start_run(client, template).status_code == 202
    retry = client.post(f"/api/batch-templates/{template.pk}/runs/{first.pk}/retry")
    assert retry.status_code == 429
    assert BatchGenerationRun.objects.get(pk=first.pk).status == "cancelled"


def test_a_run_bigger_than_the_limit_says_so(api_as, settings):
    settings.IMAGINEER_LIMIT_QUEUED_JOBS = 2
    response = start_run(api_as("creator"), BatchTemplateFactory())
    assert response.status_code == 429
    assert response.json()["error"]["message"].startswith(
        "This would queue 3 images; one user may have at most 2 queued or running (IMAGINEER_LIMIT_QUEUED_JOBS)."
    )


def test_curators_are_exempt_while_the_setting_says_so(api_as, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_RUNS = 1
    curator = api_as("curator")
    template = BatchTemplateFactory()
    assert [start_run(curator, template).status_code for _ in range(3)] == [202, 202, 202]
    settings.IMAGINEER_LIMITS_EXEMPT_CURATORS = False
    assert start_run(curator, template).status_code == 429
    settings.IMAGINEER_LIMIT_ACTIVE_RUNS = 0  # 0: no limit
    assert start_run(curator, template).status_code == 202


def test_labeling_training_and_scraping_have_their_own_limits(api_as, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_LABELING = settings.IMAGINEER_LIMIT_ACTIVE_TRAINING = 1
    settings.IMAGINEER_LIMIT_ACTIVE_SCRAPES = 1
    client = api_as("creator")
    user = client.user
    album = AlbumFactory(created_by=user)
    AlbumImageFactory(album=album)
    # A cancel still winding down holds its slot like running work.
    LabelingJobFactory(created_by=user, status=LabelingJob.Status.CANCELLING)
    running = {"status": TrainingRun.Status.RUNNING, "phase": TrainingRun.Phase.TRAINING, "progress_done": 3}
    TrainingRunFactory(album=album, name="busy", created_by=user, **running)
    ScrapeJobFactory(album=album, created_by=user)

    label = client.post(f"/api/labeling/album/{album.pk}", {}, format="json")
    train = client.post("/api/training/runs", {"album": album.pk, "name": "next", "trigger_word": "nxt"}, format="json")
    scrape = client.post("/api/scrape-jobs", {"start_urls": ["http://example.com/"], "album": album.pk}, format="json")

    assert (label.status_code, train.status_code, scrape.status_code) == (429, 429, 429)
    assert "1 labeling job queued or running: labeling job" in label.json()["error"]["message"]
    assert "training run" in train.json()["error"]["message"] and "step 3/10" in train.json()["error"]["message"]
    assert "IMAGINEER_LIMIT_ACTIVE_SCRAPES" in scrape.json()["error"]["message"]
    assert LabelingJob.objects.count() == TrainingRun.objects.count() == ScrapeJob.objects.count() == 1
    # Resuming a stopped training run starts work too.
    stopped = TrainingRun.objects.get()
    TrainingRun.objects.filter(pk=stopped.pk).update(status=TrainingRun.Status.FAILED)
    TrainingRunFactory(album=album, name="other", created_by=user)
    resume = client.post(f"/api/training/runs/{stopped.pk}/resume")
    assert resume.status_code == 429 and TrainingRun.objects.get(pk=stopped.pk).status == "failed"


def test_pages_show_the_limit_as_a_form_error(client, settings):
    settings.IMAGINEER_LIMIT_QUEUED_JOBS = 1
    client.force_login(UserFactory(role="creator"))
    form = {"prompt": "owl", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7}
    assert client.post("/generate/", form).status_code == 302
    refused = client.post("/generate/", form)
    assert refused.status_code == 400
    assert "You already have 1 image queued or running" in refused.content.decode()
    assert GenerationJob.objects.count() == 1


def test_a_template_may_hold_at_most_the_configured_rows(staff_client, api_as, settings):
    settings.IMAGINEER_MAX_TEMPLATE_ROWS = 5
    csv = "value,suit,visual_layout\n" + "".join(f"v{n},s,l\n" for n in range(6))
    data = form_data(csv_file=SimpleUploadedFile("deck.csv", csv.encode(), content_type="text/csv"))
    response = staff_client.post(reverse("admin:generation_batchtemplate_add"), data)
    assert response.status_code == 200
    assert "more than 5 rows" in response.context["adminform"].form.errors["csv_file"][0]
    assert not BatchTemplate.objects.exists()
    # A template stored before the limit was lowered cannot start a run either.
    old = BatchTemplateFactory(csv_data=[{"sign": f"s{n}", "element": "e"} for n in range(6)])
    refused = start_run(api_as("creator"), old)
    assert refused.status_code == 400
    assert "The template has 6 rows; a template may hold at most 5" in refused.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_cannot_slip_past_the_limit(live_server, settings):
    """Six requests at the same moment, room for three: the user's row lock lets exactly three in."""
    import requests

    settings.IMAGINEER_LIMIT_QUEUED_JOBS = 3
    _, key = token_create(user=UserFactory(role="creator"), name="burst")
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait(timeout=30)
        response = requests.post(
            f"{live_server.url}/api/generate",
            json={"prompt": "owl", "width": 64, "height": 64},
            headers={"Authorization": f"Token {key}"},
            timeout=60,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert sorted(statuses) == [202, 202, 202, 429, 429, 429]
    assert GenerationJob.objects.count() == 3
