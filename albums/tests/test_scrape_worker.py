"""End to end: a scrape started over the API runs on a real Celery worker (``default`` queue)
against a real HTTP server on 127.0.0.1, and its images land in the album.

The worker runs in its own process, so the in-process connection guard cannot watch it: it is
only ever given 127.0.0.1 URLs. The test process itself stays guarded.
"""

from __future__ import annotations

import pytest

from albums.models import Album, Image, ScrapeJob
from albums.services.files import media_path
from albums.tests.scrape_site import connection_guard, picture, site_running
from imagineer.testing import wait_for
from imagineer.tests.factories import UserFactory
from labeling.models import Label

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKER_ENV = {"IMAGINEER_SCRAPE_ALLOW_LOOPBACK": "true", "IMAGINEER_SCRAPE_HOST_DELAY_MS": "0"}


def test_a_scrape_runs_on_a_real_worker_into_an_album(celery_worker, client, monkeypatch, settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True  # the API checks start URLs in this process
    with site_running() as site, connection_guard(monkeypatch) as violations:
        site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        for number in range(6):
            site.add_image(f"/img/{number}.png", picture(1000 + number))
        site.add_image("/private/hidden.png", picture(1100))
        site.add("/", '<img src="/img/0.png" alt="zero"><img src="/private/hidden.png"><a href="/more">more</a>')
        site.add("/more", "".join(f'<img src="/img/{number}.png">' for number in range(1, 6)))
        celery_worker("default", extra_env=WORKER_ENV)

        client.force_login(UserFactory(role="creator"))
        response = client.post(
            "/api/scrape-jobs",
            {
                "start_urls": [site.url("/")],
                "album_name": "Worker refs",
                "max_images": 4,
                "min_width": 32,
                "min_height": 32,
            },
            content_type="application/json",
        )
        assert response.status_code == 202, response.json()
        job_id = response.json()["id"]

        job = wait_for(
            lambda: ScrapeJob.objects.filter(pk=job_id, status__in=ScrapeJob.TERMINAL).first(),
            timeout=60,
            message="the scrape job to finish on the worker",
        )
        assert not violations

    assert job.status == ScrapeJob.Status.SUCCEEDED, (job.error, job.errors)
    assert job.task_id
    assert (job.pages_fetched, job.images_downloaded) == (2, 4)
    assert job.skip_reasons == {"robots": 1}
    album = Album.objects.get(name="Worker refs")
    images = list(Image.objects.filter(albums=album).order_by("memberships__position"))
    assert [image.source_url for image in images] == [site.url(f"/img/{number}.png") for number in range(4)]
    assert all(media_path(image.file.name).is_file() for image in images)
    assert Label.objects.get(image=images[0], source="alt").text == "zero"
    assert not site.requested("/private/hidden.png")
    assert not site.requested("/img/5.png")
