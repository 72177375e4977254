"""The crawl, end to end in-process against a real HTTP server on 127.0.0.1 (loopback allowed
by the test setting), with the guard that fails a test on any other connection."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import MaxRetriesExceededError
from django.utils import timezone

from albums.models import Album, Image, ScrapeJob
from albums.services import scraping
from albums.services.files import media_path
from albums.services.scrape_parse import page_extract, srcset_largest
from albums.services.scraping import scrape_job_cancel, scrape_job_create, scrape_job_run
from albums.tasks import scrape_job_run_task
from albums.tests.scrape_site import connection_guard, decompression_bomb, picture, site_running
from imagineer import jobs
from imagineer.errors import ApplicationError
from imagineer.tests.factories import AlbumFactory, ScrapeJobFactory, UserFactory
from labeling.models import Label

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def site():
    with site_running() as running:
        running.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        yield running


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


def crawl(site, path: str, *, user=None, **options) -> ScrapeJob:
    options.setdefault("min_width", 32)
    options.setdefault("min_height", 32)
    job = scrape_job_create(
        user=user, start_urls=[site.url(path)], album_name=f"Scrape of {path}", enqueue=False, **options
    )
    return scrape_job_run(job_id=job.pk)


def album_sources(job: ScrapeJob) -> set[str]:
    return set(Image.objects.filter(albums=job.album).values_list("source_url", flat=True))


def test_srcset_largest_candidate():
    assert srcset_largest("a.png 480w, b.png 1200w, c.png 800w") == "b.png"
    assert srcset_largest("a.png, b.png 2x, c.png 1.5x") == "b.png"
    assert srcset_largest("/img,1.png 1x, /img,2.png 3x") == "/img,2.png"
    assert srcset_largest("") == ""


def test_page_extract_finds_every_kind_of_image_and_the_links():
    html = """<html><head><base href="/base/"><meta property="og:image" content="https://cdn.example/og.jpg"></head>
    <body><img src="plain.png" alt=" A  plain one "><img srcset="s.png 100w, l.png 900w" src="s.png">
    <picture><source srcset="p-small.webp 1x, p-big.webp 2x" type="image/webp"><img src="p.jpg" alt="pic"></picture>
    <a href="full.jpeg"><img src="thumb.png" alt="thumb"></a><a href="/next">next</a><a href="mailto:x@y">m</a>
    <img src="data:image/png;base64,AAAA"></body></html>"""
    images, links = page_extract(html, page_url="http://site.example/dir/page")
    by_url = {image.url: image for image in images}
    assert list(by_url) == [
        "https://cdn.example/og.jpg",
        "http://site.example/base/p-big.webp",
        "http://site.example/base/plain.png",
        "http://site.example/base/l.png",
        "http://site.example/base/thumb.png",
        "http://site.example/base/full.jpeg",
    ]
    assert by_url["http://site.example/base/plain.png"].alt == "A plain one"
    assert by_url["http://site.example/base/p-big.webp"].alt == "pic"
    assert by_url["http://site.example/base/full.jpeg"].alt == "thumb"
    assert links == ["http://site.example/next"]


def test_srcset_picture_og_and_linked_images_with_provenance(site, creator):
    site.add_image("/a/small.png", picture(1, (40, 30)))
    site.add_image("/a/big.png", picture(2))
    site.add_image("/a/pic-small.png", picture(3, (40, 30)))
    site.add_image("/a/pic-large.png", picture(4))
    site.add_image("/a/pic-fallback.png", picture(5))
    site.add_image("/a/og.png", picture(6))
    site.add_image("/a/linked.png", picture(7))
    site.add(
        "/a/",
        f"""<html><head><meta property="og:image" content="{site.url("/a/og.png")}"></head><body>
        <img srcset="small.png 100w, big.png 400w" src="small.png" alt="The big one">
        <picture><source srcset="pic-small.png 1x, pic-large.png 2x"><img src="pic-fallback.png" alt="A picture"></picture>
        <a href="linked.png">full size</a></body></html>""",
    )
    job = crawl(site, "/a/", user=creator)

    assert job.status == ScrapeJob.Status.SUCCEEDED, job.errors
    assert job.album.source_type == Album.SourceType.SCRAPE
    assert album_sources(job) == {site.url(f"/a/{name}.png") for name in ("big", "pic-large", "og", "linked")}
    for never in ("/a/small.png", "/a/pic-small.png", "/a/pic-fallback.png"):
        assert not site.requested(never)
    assert (job.pages_fetched, job.images_found, job.images_downloaded, job.images_skipped) == (1, 4, 4, 0)

    big = Image.objects.get(source_url=site.url("/a/big.png"))
    assert big.source_page_url == site.url("/a/")
    assert big.fetched_at is not None
    assert (big.width, big.height) == (160, 120)
    assert len(big.sha256) == 64 and len(big.perceptual_hash) == 16
    assert big.created_by == creator
    assert media_path(big.file.name).read_bytes() == picture(2)
    assert Label.objects.get(image=big).text == "The big one"
    assert Label.objects.filter(image=big, source="alt", label_type=Label.LabelType.CAPTION).exists()
    assert not Label.objects.filter(image__source_url=site.url("/a/og.png")).exists()
    user_agents = {headers["User-Agent"] for path, headers in site.requests if path.startswith("/a/")}
    assert all("Imagineer" in agent for agent in user_agents)


def test_depth_and_page_limits(site):
    for level in range(4):
        site.add_image(f"/d/{level}.png", picture(100 + level))
        site.add(f"/d/{level}", f'<img src="/d/{level}.png"><a href="/d/{level + 1}">deeper</a>')
    site.add("/d/0", '<img src="/d/0.png"><a href="/d/1">deeper</a><a href="http://other.example/x">away</a>')

    job = crawl(site, "/d/0", max_depth=1)
    assert album_sources(job) == {site.url("/d/0.png"), site.url("/d/1.png")}
    assert not site.requested("/d/2")
    assert job.skip_reasons.get("offsite") == 1  # same site only: other.example is not followed

    job = crawl(site, "/d/0", max_depth=3, max_pages=2)
    assert job.pages_fetched == 2
    assert album_sources(job) == {site.url("/d/0.png"), site.url("/d/1.png")}


def test_max_images_stops_downloading(site):
    for number in range(5):
        site.add_image(f"/m/{number}.png", picture(200 + number))
    site.add("/m/", "".join(f'<img src="/m/{number}.png">' for number in range(5)))
    job = crawl(site, "/m/", max_images=2)
    assert job.images_downloaded == 2
    assert job.images_found == 5
    assert not site.requested("/m/2.png")


def test_robots_txt_disallow_is_honoured(site):
    site.add_image("/private/secret.png", picture(300))
    site.add("/private/page", '<img src="/pub/other.png">')
    site.add_image("/pub/ok.png", picture(301))
    site.add("/pub/", '<img src="/private/secret.png"><img src="/pub/ok.png"><a href="/private/page">p</a>')
    job = crawl(site, "/pub/")
    assert album_sources(job) == {site.url("/pub/ok.png")}
    assert not any(path.startswith("/private/") for path in site.paths())
    assert job.skip_reasons["robots"] == 2
    assert job.pages_skipped == 1 and job.images_skipped == 1
    assert any("disallowed by robots.txt" in error["message"] for error in job.errors)


def test_duplicates_and_near_duplicates_are_skipped(site):
    original = picture(400)
    site.add_image("/dup/original.png", original)
    site.add_image("/dup/copy.png", original)
    site.add_image("/dup/resized.jpg", picture(400, (144, 108), "JPEG", quality=80), "image/jpeg")
    site.add_image("/dup/other.png", picture(401))
    site.add(
        "/dup/",
        "".join(f'<img src="/dup/{name}">' for name in ("original.png", "copy.png", "resized.jpg", "other.png")),
    )
    job = crawl(site, "/dup/")
    assert album_sources(job) == {site.url("/dup/original.png"), site.url("/dup/other.png")}
    assert job.skip_reasons == {"duplicate": 1, "near_duplicate": 1}

    # A second crawl into the same album adds nothing: everything is already there.
    again = scrape_job_create(
        user=None, start_urls=[site.url("/dup/")], album=job.album, min_width=32, min_height=32, enqueue=False
    )
    again = scrape_job_run(job_id=again.pk)
    assert again.images_downloaded == 0
    assert again.skip_reasons == {"duplicate": 3, "near_duplicate": 1}
    assert job.album.memberships.count() == 2


def test_bad_downloads_are_refused_with_a_reason(site, settings):
    settings.IMAGINEER_SCRAPE_MAX_BYTES = 200_000
    site.add_image("/bad/ok.png", picture(500))
    site.add("/bad/fake.png", "<html>I am not an image</html>", "image/png")
    site.add("/bad/page.png", "<html>a page</html>", "text/html")
    site.add_image("/bad/declared.png", b"\x89PNG" + b"\0" * 400_000)
    site.stream("/bad/streamed.png", total=8 * 1024 * 1024)
    site.add_image("/bad/bomb.png", decompression_bomb())
    site.add_image("/bad/tiny.png", picture(501, (16, 16)))
    names = ("ok", "fake", "page", "declared", "streamed", "bomb", "tiny")
    site.add("/bad/", "".join(f'<a href="/bad/{name}.png">{name}</a>' for name in names))

    job = crawl(site, "/bad/")
    assert album_sources(job) == {site.url("/bad/ok.png")}
    assert job.skip_reasons == {"not_an_image": 2, "too_large": 2, "decompression_bomb": 1, "too_small": 1}
    messages = {error["url"].rsplit("/", 1)[-1]: error["message"] for error in job.errors}
    assert "not a readable image" in messages["fake.png"]
    assert "text/html, not an image" in messages["page.png"]
    assert "over the 200,000-byte limit" in messages["declared.png"]
    assert "download cut off" in messages["streamed.png"]
    assert "decompression bomb" in messages["bomb.png"]
    # The streamed body was cut off early, not downloaded in full.
    assert site.streamed["/bad/streamed.png"] < 8 * 1024 * 1024
    assert not any(media_path("scraped/.incoming").iterdir())


def test_a_start_url_that_is_an_image_is_downloaded(site):
    site.add_image("/direct.png", picture(600))
    job = crawl(site, "/direct.png")
    assert album_sources(job) == {site.url("/direct.png")}
    assert job.pages_fetched == 0


def test_cancel_a_running_job_stops_it(site):
    for number in range(4):
        site.add_image(f"/c/{number}.png", picture(700 + number))
    site.add("/c/", "".join(f'<img src="/c/{number}.png">' for number in range(4)))
    job = scrape_job_create(
        user=None, start_urls=[site.url("/c/")], album_name="Cancel me", min_width=32, min_height=32, enqueue=False
    )

    def cancel_after_first(current: ScrapeJob) -> None:
        if current.images_downloaded == 1 and not current.cancel_requested:
            scrape_job_cancel(job=current)

    job = scrape_job_run(job_id=job.pk, on_progress=cancel_after_first)
    assert job.status == ScrapeJob.Status.CANCELLED
    assert job.images_downloaded == 1
    assert not site.requested("/c/2.png")


def test_cancel_a_queued_job_and_run_twice_is_harmless(site):
    job = scrape_job_create(user=None, start_urls=[site.url("/nothing")], album_name="Queued", enqueue=False)
    job = scrape_job_cancel(job=job)
    assert job.status == ScrapeJob.Status.CANCELLED
    assert scrape_job_run(job_id=job.pk).status == ScrapeJob.Status.CANCELLED
    with pytest.raises(ApplicationError, match="already cancelled"):
        scrape_job_cancel(job=job)


def test_permissions_and_input_checks(site, api_as):
    viewer, other = api_as("viewer"), api_as("creator")
    owner = UserFactory(role="creator")
    new_album = {"start_urls": [site.url("/a/")], "album_name": "No"}
    assert viewer.post("/api/scrape-jobs", new_album, format="json").status_code == 403
    album = AlbumFactory(created_by=owner)
    into_album = {"start_urls": [site.url("/a/")], "album": album.pk}
    assert other.post("/api/scrape-jobs", into_album, format="json").status_code == 403
    job = scrape_job_create(user=owner, start_urls=[site.url("/a/")], album=album, enqueue=False)
    # Someone else's job is not even found; cancelling it leaves it queued.
    assert other.post(f"/api/scrape-jobs/{job.pk}/cancel").status_code == 404
    job.refresh_from_db()
    assert job.status == ScrapeJob.Status.QUEUED and not job.cancel_requested

    with pytest.raises(ApplicationError) as caught:
        scrape_job_create(user=owner, start_urls=["file:///etc/passwd", "http://10.0.0.1/"], album_name="x")
    assert len(caught.value.fields["start_urls"]) == 2
    with pytest.raises(ApplicationError) as caught:
        scrape_job_create(user=owner, start_urls=[site.url("/")], album_name="x", max_images=0)
    assert "max_images" in caught.value.fields
    with pytest.raises(ApplicationError) as caught:
        scrape_job_create(user=owner, start_urls=[site.url("/")])
    assert "album_name" in caught.value.fields
    assert ScrapeJob.objects.count() == 1


def test_a_job_whose_every_url_was_refused_fails_with_the_reasons(site):
    site.add("/private/only", "<p>nothing for robots</p>")
    job = crawl(site, "/private/only")
    assert job.status == ScrapeJob.Status.FAILED
    assert job.error.startswith("Nothing was collected: every URL was refused or failed (robots: 1). First: ")
    assert "disallowed by robots.txt" in job.error


def test_a_page_whose_every_image_is_broken_fails_without_naming_server_paths(site, settings):
    site.add("/broken/a.png", "<html>not an image</html>", "image/png")
    site.add("/broken/b.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")
    site.add("/broken/", '<img src="/broken/a.png"><img src="/broken/b.png">')
    job = crawl(site, "/broken/")
    assert job.status == ScrapeJob.Status.FAILED
    assert "Nothing was collected" in job.error and "not_an_image: 2" in job.error
    shown = job.error + " ".join(error["message"] for error in job.errors)
    assert "not a readable image" in shown
    for secret in (str(settings.MEDIA_ROOT), ".part", "/tmp", str(settings.BASE_DIR)):
        assert secret not in shown, secret


def test_a_page_without_images_and_a_job_of_duplicates_still_succeed(site):
    site.add("/empty/", "<p>no pictures here</p>")
    assert crawl(site, "/empty/").status == ScrapeJob.Status.SUCCEEDED
    site.add_image("/again/one.png", picture(700))
    site.add("/again/", '<img src="/again/one.png">')
    first = crawl(site, "/again/")
    second = scrape_job_run(
        job_id=scrape_job_create(
            user=None, start_urls=[site.url("/again/")], album=first.album, min_width=32, min_height=32, enqueue=False
        ).pk
    )
    assert (first.status, second.status, second.images_downloaded) == ("succeeded", "succeeded", 0)


def test_the_scrape_command_exits_non_zero_when_nothing_was_fetched_because_of_errors(site):
    from io import StringIO

    from django.core.management import CommandError, call_command

    site.add("/private/cli", "<p>refused</p>")
    out = StringIO()
    with pytest.raises(CommandError, match="Nothing was collected: every URL was refused or failed"):
        call_command("scrape", site.url("/private/cli"), "--album", "CLI refused", stdout=out, stderr=StringIO())
    assert "failed: 0 images added from 0 pages" in out.getvalue()


def test_messages_lose_server_paths_but_keep_urls(settings):
    from albums.services.scraping import paths_hidden

    message = f"cannot identify image file '{settings.MEDIA_ROOT}/scraped/.incoming/tmpab.part' from https://example.com/tmp/a.png"
    assert paths_hidden(message) == (
        "cannot identify image file '(a file on the server)' from https://example.com/tmp/a.png"
    )


def test_a_job_held_by_a_live_worker_is_left_alone_and_taken_over_once_its_heartbeat_is_stale(site, settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    site.add_image("/held/one.png", picture(800))
    site.add("/held/", '<img src="/held/one.png">')
    job = scrape_job_create(
        user=None, start_urls=[site.url("/held/")], album_name="Held", min_width=32, min_height=32, enqueue=False
    )
    assert jobs.claim_one(ScrapeJob, job.pk, task_id="t-1", worker="elsewhere:1")
    # The same message redelivered while that worker still crawls: nothing runs twice.
    job = scrape_job_run(job_id=job.pk, task_id="t-1")
    assert (job.status, job.worker, job.images_downloaded, job.attempts) == ("running", "elsewhere:1", 0, 1)
    assert not site.requested("/held/one.png")

    ScrapeJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    job = scrape_job_run(job_id=job.pk, task_id="t-1")
    assert (job.status, job.images_downloaded, job.attempts, job.progress_done) == ("succeeded", 1, 2, 1)
    assert job.worker == jobs.worker_name() and job.heartbeat_at is None


def test_a_worker_whose_job_was_taken_over_stops_without_writing(site, monkeypatch):
    monkeypatch.setattr(scraping, "PROGRESS_INTERVAL", 0)  # every progress write checks the claim
    for number in range(3):
        site.add_image(f"/lost/{number}.png", picture(810 + number))
    site.add("/lost/", "".join(f'<img src="/lost/{number}.png">' for number in range(3)))
    job = scrape_job_create(
        user=None, start_urls=[site.url("/lost/")], album_name="Lost", min_width=32, min_height=32, enqueue=False
    )

    def taken_over(current: ScrapeJob) -> None:
        if current.images_downloaded == 1:
            ScrapeJob.objects.filter(pk=current.pk).update(worker="newcomer:1", task_id="t-new")

    job = scrape_job_run(job_id=job.pk, on_progress=taken_over)
    assert (job.status, job.worker) == ("running", "newcomer:1")
    assert job.images_downloaded <= 1 and not site.requested("/lost/2.png")


def test_cancelling_a_queued_job_revokes_its_message(site, django_capture_on_commit_callbacks, monkeypatch):
    revoked: list[list[str]] = []
    monkeypatch.setattr(jobs, "revoke", revoked.append)
    job = ScrapeJobFactory(task_id="t-queued")
    with django_capture_on_commit_callbacks(execute=True):
        job = scrape_job_cancel(job=job)
    assert (job.status, job.cancel_requested) == ("cancelled", True)
    assert revoked == [["t-queued"]]


def test_scrape_jobs_are_a_registered_kind_whose_lost_messages_can_be_sent_again(django_capture_on_commit_callbacks):
    kind = next(kind for kind in jobs.kinds() if kind.model is ScrapeJob)
    queued, finished = ScrapeJobFactory(), ScrapeJobFactory(status=ScrapeJob.Status.SUCCEEDED)
    with django_capture_on_commit_callbacks() as callbacks:
        kind.resend([queued.pk, finished.pk])
    assert len(callbacks) == 1
    queued.refresh_from_db()
    assert queued.task_id


def test_the_task_looks_again_later_while_another_worker_holds_the_job():
    job = ScrapeJobFactory()
    assert jobs.claim_one(ScrapeJob, job.pk, task_id="t-1", worker="elsewhere:1")
    # Run eagerly, every retry comes at once and finds the job still held, up to the limit.
    result = scrape_job_run_task.apply(args=[job.pk], task_id="t-1")
    assert isinstance(result.result, MaxRetriesExceededError)
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempts) == ("running", "elsewhere:1", 1)
