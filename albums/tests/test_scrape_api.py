"""/api/scrape-jobs, the scrape pages and the `scrape` management command.

Requests to start jobs are checked here without a worker (the enqueue is captured); the
crawl itself runs in test_scrape_crawl and, through a real worker, in test_scrape_worker.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from albums.models import Album, Image, ScrapeJob
from albums.services.scraping import scrape_job_create
from albums.tests.scrape_site import connection_guard, picture, site_running
from imagineer.tests.factories import AlbumFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/api/scrape-jobs"


@pytest.fixture(autouse=True)
def guard(monkeypatch, settings):
    settings.IMAGINEER_SCRAPE_ALLOW_LOOPBACK = True
    settings.IMAGINEER_SCRAPE_HOST_DELAY_MS = 0
    with connection_guard(monkeypatch) as violations:
        yield violations
    assert not violations, f"connections to forbidden addresses were attempted: {violations}"


@pytest.fixture
def creator():
    return UserFactory(role="creator")


def client_for(client, user):
    client.force_login(user)
    return client


def start(client, **body):
    body.setdefault("start_urls", ["http://127.0.0.1:9/gallery"])
    return client.post(LIST, body, content_type="application/json")


def test_create_list_retrieve_cancel(client, creator, django_capture_on_commit_callbacks):
    api = client_for(client, creator)
    with django_capture_on_commit_callbacks() as callbacks:
        response = start(api, album_name="Refs", max_images=5)
    assert response.status_code == 202, response.json()
    assert len(callbacks) == 1  # the job is sent to the worker once the request commits
    body = response.json()
    assert body["status"] == "queued"
    assert body["album_name"] == "Refs"
    assert body["max_images"] == 5
    assert response["Location"].endswith(f"{LIST}/{body['id']}")
    assert Album.objects.get(pk=body["album"]).source_type == Album.SourceType.SCRAPE

    listing = api.get(LIST).json()
    assert listing["count"] == 1
    assert listing["results"][0]["id"] == body["id"]
    assert api.get(f"{LIST}/{body['id']}").json()["start_urls"] == ["http://127.0.0.1:9/gallery"]

    cancelled = api.post(f"{LIST}/{body['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = api.post(f"{LIST}/{body['id']}/cancel")
    assert again.status_code == 400
    assert again.json()["error"]["message"] == "This scrape job has already cancelled."


def test_bad_input_is_a_400_naming_the_fields(client, creator):
    api = client_for(client, creator)
    response = start(api, start_urls=["file:///etc/passwd", "http://169.254.169.254/latest/"], album_name="x")
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "only http and https" in fields["start_urls"][0]
    assert "169.254.169.254 is a link-local address" in fields["start_urls"][1]

    response = start(api, album_name="x", max_images=0, max_depth=9)
    assert response.status_code == 400
    assert "max_images" in response.json()["error"]["fields"] or "max_depth" in response.json()["error"]["fields"]
    assert start(api).json()["error"]["fields"].keys() == {"album_name"}
    assert start(api, album=999999).json()["error"]["fields"].keys() == {"album"}
    assert not ScrapeJob.objects.exists()
    assert not Album.objects.exists()


def test_roles_and_ownership(client, creator):
    viewer, other, curator = UserFactory(role="viewer"), UserFactory(role="creator"), UserFactory(role="curator")
    job = scrape_job_create(user=creator, start_urls=["http://127.0.0.1:9/"], album_name="Mine", enqueue=False)

    assert client.get(LIST).status_code in (401, 403)
    assert start(client_for(client, viewer), album_name="No").status_code == 403
    assert client.get(LIST).json()["count"] == 0  # a viewer has no jobs and sees no one else's

    client.force_login(other)
    assert client.get(LIST).json()["count"] == 0
    assert client.get(f"{LIST}/{job.pk}").status_code == 404
    assert client.post(f"{LIST}/{job.pk}/cancel").status_code == 404
    assert start(client, album=job.album_id).status_code == 403  # someone else's album

    client.force_login(curator)
    assert client.get(LIST).json()["count"] == 1
    assert client.post(f"{LIST}/{job.pk}/cancel").json()["status"] == "cancelled"


def test_list_query_count_does_not_grow_with_jobs(client, creator, django_assert_max_num_queries, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_SCRAPES = 0  # five queued jobs of one user, past the default limit
    for number in range(5):
        scrape_job_create(user=creator, start_urls=["http://127.0.0.1:9/"], album_name=f"A{number}", enqueue=False)
    api = client_for(client, creator)
    with django_assert_max_num_queries(6):
        assert api.get(LIST).json()["count"] == 5


def test_pages_start_follow_and_cancel(client, creator, django_capture_on_commit_callbacks):
    client.force_login(creator)
    form = client.get(reverse("albums:scrape-new"))
    assert form.status_code == 200
    assert b"Start URLs" in form.content

    defaults = {"max_images": 10, "max_pages": 5, "max_depth": 1, "min_width": 64, "min_height": 64}
    bad = client.post(reverse("albums:scrape-new"), {"start_urls": "http://10.0.0.1/", "album_name": "P", **defaults})
    assert bad.status_code == 400
    assert "10.0.0.1 is a private address" in bad.content.decode()

    existing = AlbumFactory(created_by=creator)
    data = {
        "start_urls": "http://127.0.0.1:9/a\nhttp://127.0.0.1:9/b",
        "album": existing.pk,
        "same_site_only": "on",
        **defaults,
    }
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("albums:scrape-new"), data)
    job = ScrapeJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("albums:scrape-detail", args=[job.pk])
    assert len(callbacks) == 1
    assert job.album == existing and job.start_urls == ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]

    detail = client.get(reverse("albums:scrape-detail", args=[job.pk])).content.decode()
    assert 'hx-trigger="every 1s"' in detail
    assert reverse("albums:scrape-cancel", args=[job.pk]) in detail
    assert client.get(reverse("albums:scrape-list")).status_code == 200

    client.post(reverse("albums:scrape-cancel", args=[job.pk]))
    partial = client.get(reverse("albums:scrape-progress", args=[job.pk])).content.decode()
    assert "Cancelled" in partial
    assert "hx-trigger" not in partial  # a finished job stops polling

    client.force_login(UserFactory(role="viewer"))
    assert client.get(reverse("albums:scrape-new")).status_code == 403
    assert client.get(reverse("albums:scrape-detail", args=[job.pk])).status_code == 404


def test_management_command_scrapes_with_a_progress_bar():
    with site_running() as site:
        site.add("/robots.txt", "", "text/plain")
        for number in range(3):
            site.add_image(f"/{number}.png", picture(900 + number))
        site.add("/", "".join(f'<img src="/{number}.png" alt="n{number}">' for number in range(3)))
        out, err = StringIO(), StringIO()
        call_command(
            "scrape",
            site.url("/"),
            "--album",
            "From the command",
            "--max",
            "2",
            "--min-size",
            "32",
            stdout=out,
            stderr=err,
        )
    album = Album.objects.get(name="From the command")
    assert album.source_type == Album.SourceType.SCRAPE
    assert Image.objects.filter(albums=album).count() == 2
    assert "succeeded: 2 images added from 1 pages" in out.getvalue()
    assert "images" in err.getvalue()  # tqdm draws on stderr

    with pytest.raises(CommandError, match="only http and https"):
        call_command("scrape", "ftp://example.com/", "--album", "x", stdout=out, stderr=err)


def test_scrape_pages_query_counts_do_not_grow_with_jobs(client, creator, settings):
    settings.IMAGINEER_LIMIT_ACTIVE_SCRAPES = 0  # five queued jobs of one user, past the default limit
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(creator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("albums:scrape-list")).status_code == 200
        return len(captured)

    scrape_job_create(user=creator, start_urls=["http://127.0.0.1:9/"], album_name="One", enqueue=False)
    one = queries()
    for number in range(4):
        scrape_job_create(user=creator, start_urls=["http://127.0.0.1:9/"], album_name=f"More {number}", enqueue=False)
    assert queries() == one
