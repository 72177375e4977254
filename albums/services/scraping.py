"""Web scraping into albums: jobs, the crawl, and verified, de-duplicated, attributed images.

A ScrapeJob is created (with its album) by :func:`scrape_job_create` and run on the
``default`` queue by :func:`scrape_job_run`. The crawl is breadth-first from the start URLs,
bounded by pages, images and link depth; every request goes through
:class:`albums.services.net.Fetcher` (SSRF checks on the connected address, robots.txt, a
per-host delay, timeouts, size limits). An image is kept only if Pillow decodes it within the
pixel limit, it is large enough, and neither its sha256 nor (within a small Hamming distance)
its perceptual hash is already in the album.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage

from albums.models import Album, Image, ScrapeJob, ScrapeProblem
from albums.services.curation import album_add_images, album_create
from albums.services.files import media_path, sha256_file
from albums.services.net import Fetcher, FetchRefused, body_read, fetch_deadline, fetcher, url_check
from albums.services.scrape_parse import (
    FORMAT_EXTENSIONS,
    ImageCandidate,
    VerifiedImage,
    hamming,
    image_verify,
    page_extract,
    site_of,
)
from albums.tasks import scrape_job_run_task
from imagineer import jobs
from imagineer.errors import ApplicationError, field_error
from imagineer.jobs import enqueue_on_commit
from imagineer.limits import limit_check
from labeling.models import Label

logger = logging.getLogger(__name__)

MAX_START_URLS = 20
LIMITS = {  # field: (minimum, maximum)
    "max_images": (1, 5000),
    "max_pages": (1, 1000),
    "max_depth": (0, 5),
    "min_width": (1, 10_000),
    "min_height": (1, 10_000),
}
# Perceptual hashes (64-bit pHash) this close are the same picture re-encoded, resized or
# lightly edited.
NEAR_DUPLICATE_DISTANCE = 6
ERRORS_KEPT = 50
# Progress (and the heartbeat with it) is written at most this often; pages poll every second.
PROGRESS_INTERVAL = 0.5

HTML_TYPES = ("text/html", "application/xhtml+xml")
# Image responses are accepted with an image type or a generic one (some servers send
# application/octet-stream); everything is decoded before it is kept anyway.
IMAGE_TYPES_GENERIC = ("application/octet-stream", "binary/octet-stream", "")
SKIP_REASONS_NOT_PROBLEMS = frozenset({"duplicate", "near_duplicate", "too_small", "offsite"})

ProgressCallback = Callable[[ScrapeJob], None]


# --- jobs --------------------------------------------------------------------------------


def _start_urls_clean(start_urls: list[str] | str) -> list[str]:
    if isinstance(start_urls, str):
        start_urls = start_urls.split()
    urls = list(dict.fromkeys(url.strip() for url in start_urls if url and url.strip()))
    if not urls:
        raise field_error("start_urls", "Give at least one start URL (http:// or https://).")
    if len(urls) > MAX_START_URLS:
        raise field_error("start_urls", f"Give at most {MAX_START_URLS} start URLs.")
    problems = []
    for url in urls:
        try:
            url_check(url)
        except FetchRefused as exc:
            problems.append(exc.message)
    if problems:
        raise ApplicationError(problems[0], fields={"start_urls": problems})
    return urls


@transaction.atomic
def scrape_job_create(
    *,
    user: User | None,
    start_urls: list[str] | str,
    album: Album | None = None,
    album_name: str = "",
    max_images: int = 100,
    max_pages: int = 20,
    max_depth: int = 1,
    same_site_only: bool = True,
    min_width: int = 128,
    min_height: int = 128,
    enqueue: bool = True,
) -> ScrapeJob:
    """Create a scrape job (and its new album, if ``album_name`` is given instead of ``album``)
    and enqueue it once the transaction commits (the management command runs it itself).

    ``user`` (None from the management command) becomes the owner of the job and the new album;
    whether they may scrape into ``album`` is the caller's decision (imagineer.permissions).
    """
    limit_check(user=user, scraping=1)
    urls = _start_urls_clean(start_urls)
    values = {
        "max_images": max_images,
        "max_pages": max_pages,
        "max_depth": max_depth,
        "min_width": min_width,
        "min_height": min_height,
    }
    for name, value in values.items():
        low, high = LIMITS[name]
        if not isinstance(value, int) or not low <= value <= high:
            raise field_error(name, f"{name.replace('_', ' ').capitalize()} must be between {low} and {high}.")
    if album is not None and album_name.strip():
        raise field_error("album_name", "Choose an existing album or name a new one, not both.")
    if album is None:
        if not album_name.strip():
            raise field_error("album_name", "Choose an album or give a name for a new one.")
        album = album_create(
            name=album_name,
            source_type=Album.SourceType.SCRAPE,
            description="Collected from " + ", ".join(urls),
            created_by=user,
        )
    job = ScrapeJob.objects.create(
        progress_total=max_images,
        start_urls=urls,
        album=album,
        same_site_only=same_site_only,
        created_by=user,
        **values,
    )
    if enqueue:
        scrape_job_enqueue(job=job)
    return job


def scrape_job_enqueue(*, job: ScrapeJob) -> None:
    """Send the job to the worker once the current transaction commits."""
    job.task_id = enqueue_on_commit(scrape_job_run_task, ScrapeJob.objects.filter(pk=job.pk), args=[job.pk])


def scrape_jobs_resend(job_ids: Sequence[int]) -> None:
    """The reconciler's hook (imagineer.jobs registry): send queued jobs whose message was lost again."""
    for job_id in ScrapeJob.objects.filter(pk__in=job_ids, status=ScrapeJob.Status.QUEUED).values_list("pk", flat=True):
        enqueue_on_commit(scrape_job_run_task, ScrapeJob.objects.filter(pk=job_id), args=[job_id])


@transaction.atomic
def scrape_job_cancel(*, job: ScrapeJob) -> ScrapeJob:
    """Cancel a queued job at once (its message is revoked); ask a running one to stop (the
    crawler checks before each request)."""
    job = ScrapeJob.objects.select_for_update().get(pk=job.pk)
    if job.is_finished:
        raise ApplicationError(f"This scrape job has already {job.status}.", code="finished")
    jobs.cancel(ScrapeJob.objects.filter(pk=job.pk))
    job.refresh_from_db()
    return job


class ClaimLost(Exception):
    """Another worker took the job over (this one was thought dead): stop without writing."""


def scrape_job_run(
    *, job_id: int, task_id: str | None = None, on_progress: ProgressCallback | None = None
) -> ScrapeJob:
    """Claim and run a job to its end. Safe to call twice: a job another worker holds, or one
    already finished, is left alone (the returned row says which). ``task_id`` is the Celery
    task's; None runs it in this process (the management command, tests)."""
    worker = jobs.worker_name()
    if not jobs.claim_one(ScrapeJob, job_id, task_id=task_id or f"local-{uuid.uuid4()}", worker=worker):
        logger.info("Scrape job %s is not claimable (held by another worker, finished or cancelled).", job_id)
        return ScrapeJob.objects.get(pk=job_id)
    job = ScrapeJob.objects.select_related("album").get(pk=job_id)
    crawl = Crawl(job=job, worker=worker, on_progress=on_progress)
    try:
        with fetcher() as client, jobs.Heartbeat(ScrapeJob, [job.pk], worker=worker):
            crawl.run(client)
    except ClaimLost:
        logger.warning("Scrape job %s was taken over by another worker; this one stops.", job_id)
    except jobs.TRANSIENT_DB_ERRORS:
        raise  # the task wrapper retries; the crawl is not the one that failed
    except Exception as exc:
        logger.exception("Scrape job %s failed", job_id)
        job.current_url = ""
        jobs.job_fail(
            ScrapeJob, [job.pk], worker=worker, error=paths_hidden(f"{type(exc).__name__}: {exc}"), **crawl.progress()
        )
    else:
        failure = None if crawl.cancelled else scrape_failure(job)
        if crawl.cancelled:
            jobs.job_cancelled(ScrapeJob, [job.pk], worker=worker, **crawl.progress())
        elif failure:
            jobs.job_fail(ScrapeJob, [job.pk], worker=worker, error=failure, **crawl.progress())
        else:
            jobs.job_finish(ScrapeJob, [job.pk], worker=worker, **crawl.progress())
    job.refresh_from_db()
    if on_progress:
        on_progress(job)
    return job


def scrape_failure(job: ScrapeJob) -> str | None:
    """Why a finished crawl counts as failed: it collected nothing, and only because of problems.

    That is: no page could be fetched, or images were found and every one was refused for a
    problem (not for being a duplicate or too small). A page with no images is not a failure.
    """
    benign = any(job.skip_reasons.get(reason) for reason in SKIP_REASONS_NOT_PROBLEMS - {"offsite"})
    if job.images_downloaded or benign or not job.errors or (job.pages_fetched and not job.images_found):
        return None
    problems = sorted(
        ((reason, count) for reason, count in job.skip_reasons.items() if reason not in SKIP_REASONS_NOT_PROBLEMS),
        key=lambda item: -item[1],
    )
    summary = ", ".join(f"{reason}: {count}" for reason, count in problems)
    return f"Nothing was collected: every URL was refused or failed ({summary}). First: {job.errors[0]['message']}"


def paths_hidden(text: str) -> str:
    """A message without this server's file paths (Pillow and the OS name the temporary file)."""
    roots = {
        str(settings.MEDIA_ROOT),
        str(Path(settings.MEDIA_ROOT).resolve()),
        str(settings.BASE_DIR),
        tempfile.gettempdir(),
    }
    for root in sorted(roots, key=len, reverse=True):
        # Not inside a URL ("https://example.com/tmp/a.png" keeps its path).
        text = re.sub(r"(?<![\w.~%/-])" + re.escape(root.rstrip("/")) + r"/[^\s'\"]*", "(a file on the server)", text)
    return text


# --- the crawl ---------------------------------------------------------------------------


class Crawl:
    PROGRESS_FIELDS = (
        "pages_fetched",
        "pages_skipped",
        "images_found",
        "images_downloaded",
        "images_skipped",
        "skip_reasons",
        "errors",
        "current_url",
        "progress_done",
    )

    def __init__(self, *, job: ScrapeJob, worker: str, on_progress: ProgressCallback | None = None):
        self.job = job
        self.worker = worker
        self.album = job.album
        self.on_progress = on_progress
        self.cancelled = False
        self.sites = {site_of(url) for url in job.start_urls}
        self.seen_images: set[str] = set()
        self.shas: set[str] = set()
        self.hashes: list[str] = []
        self.incoming = media_path("scraped/.incoming")
        self.throttle = jobs.Throttle(PROGRESS_INTERVAL)

    # -- progress --

    def progress(self) -> dict[str, Any]:
        self.job.progress_done = self.job.images_downloaded
        return {field: getattr(self.job, field) for field in self.PROGRESS_FIELDS}

    def save(self) -> None:
        """Write the counters with the heartbeat at most every PROGRESS_INTERVAL seconds (each
        write is a commit); the end of the job writes them once more."""
        if self.throttle.ready() and not jobs.beat(ScrapeJob, [self.job.pk], worker=self.worker, **self.progress()):
            raise ClaimLost
        if self.on_progress:
            self.on_progress(self.job)

    def skip(self, *, reason: str, message: str, url: str, page: bool) -> None:
        if page:
            self.job.pages_skipped += 1
        else:
            self.job.images_skipped += 1
        self.job.skip_reasons[reason] = self.job.skip_reasons.get(reason, 0) + 1
        if reason not in SKIP_REASONS_NOT_PROBLEMS:
            entry: ScrapeProblem = {"url": url[:2000], "reason": reason, "message": paths_hidden(message)[:500]}
            self.job.errors = [*self.job.errors, entry][-ERRORS_KEPT:]
        self.save()

    def cancel_requested(self) -> bool:
        if not self.cancelled:
            self.cancelled = ScrapeJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self.cancelled

    def done(self) -> bool:
        return self.job.images_downloaded >= self.job.max_images or self.cancel_requested()

    # -- the walk --

    def album_hashes_load(self) -> None:
        """sha256 and perceptual hashes already in the album (hashing images that lack one)."""
        for image in Image.objects.filter(memberships__album=self.album).only(
            "id", "file", "sha256", "perceptual_hash"
        ):
            self.shas.add(image.sha256)
            if not image.perceptual_hash:
                try:
                    import imagehash

                    with PILImage.open(media_path(image.file.name)) as picture:
                        image.perceptual_hash = str(imagehash.phash(picture))
                except (OSError, ValueError):
                    continue
                Image.objects.filter(pk=image.pk).update(perceptual_hash=image.perceptual_hash)
            self.hashes.append(image.perceptual_hash)

    def run(self, client: Fetcher) -> None:
        self.album_hashes_load()
        queue: deque[tuple[str, int]] = deque((url, 0) for url in self.job.start_urls)
        queued = set(self.job.start_urls)
        while queue and self.job.pages_fetched < self.job.max_pages and not self.done():
            url, depth = queue.popleft()
            links = self.page_visit(client, url)
            if depth >= self.job.max_depth:
                continue
            for link in links:
                if link in queued:
                    continue
                queued.add(link)
                if self.job.same_site_only and site_of(link) not in self.sites:
                    self.job.skip_reasons["offsite"] = self.job.skip_reasons.get("offsite", 0) + 1
                    continue
                queue.append((link, depth + 1))
        self.job.current_url = ""

    def page_visit(self, client: Fetcher, url: str) -> list[str]:
        """Fetch one page and take its images; returns its links."""
        self.job.current_url = url
        try:
            response = client.get(url)
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if content_type.startswith("image/"):
                # A start URL (or link) that is an image itself.
                candidate = ImageCandidate(url=response.url, page_url=url)
                self.job.images_found += 1
                self.seen_images.add(response.url)
                self.image_take(candidate, response)
                return []
            if content_type not in HTML_TYPES:
                response.close()
                raise FetchRefused("not_html", f"{url} is {content_type or 'of no type'}, not an HTML page", url=url)
            encoding = response.encoding if "charset" in response.headers.get("Content-Type", "").lower() else None
            body = body_read(response, None, limit=settings.IMAGINEER_SCRAPE_MAX_PAGE_BYTES, deadline=fetch_deadline())
        except FetchRefused as exc:
            self.skip(reason=exc.reason, message=exc.message, url=url, page=True)
            return []
        self.job.pages_fetched += 1
        images, links = page_extract(body, page_url=response.url, encoding=encoding)
        fresh = [image for image in images if image.url not in self.seen_images]
        self.seen_images.update(image.url for image in fresh)
        self.job.images_found += len(fresh)
        self.save()
        for candidate in fresh:
            if self.done():
                break
            self.image_fetch(client, candidate)
        return links

    def image_fetch(self, client: Fetcher, candidate: ImageCandidate) -> None:
        self.job.current_url = candidate.url
        try:
            response = client.get(candidate.url)
        except FetchRefused as exc:
            self.skip(reason=exc.reason, message=exc.message, url=candidate.url, page=False)
            return
        self.image_take(candidate, response)

    def image_take(self, candidate: ImageCandidate, response: Any) -> None:
        """Download, verify, de-duplicate and store one image from an open response."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        sink = tempfile.NamedTemporaryFile(dir=self.incoming, suffix=".part", delete=False)  # noqa: SIM115
        tmp = Path(sink.name)
        try:
            with sink:
                content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
                if not (content_type.startswith("image/") or content_type in IMAGE_TYPES_GENERIC):
                    response.close()
                    raise FetchRefused("not_an_image", f"{candidate.url} is {content_type}, not an image")
                body_read(response, sink, limit=settings.IMAGINEER_SCRAPE_MAX_BYTES, deadline=fetch_deadline())
            try:
                verified = image_verify(tmp, min_width=self.job.min_width, min_height=self.job.min_height)
            except FetchRefused as exc:
                raise FetchRefused(exc.reason, f"{candidate.url}: {exc.message}") from None
            sha = sha256_file(tmp)
            if sha in self.shas:
                raise FetchRefused("duplicate", f"{candidate.url} is already in the album")
            if any(hamming(known, verified.perceptual_hash) <= NEAR_DUPLICATE_DISTANCE for known in self.hashes):
                raise FetchRefused("near_duplicate", f"{candidate.url} looks like an image already in the album")
            self.image_store(candidate, tmp, sha=sha, verified=verified)
        except FetchRefused as exc:
            self.skip(reason=exc.reason, message=exc.message, url=candidate.url, page=False)
        finally:
            with suppress(FileNotFoundError):
                tmp.unlink()

    def image_store(self, candidate: ImageCandidate, tmp: Path, *, sha: str, verified: VerifiedImage) -> None:
        # The job id keeps names unique even if an earlier copy was removed from the album but
        # its file is still used by another row.
        relative = f"scraped/{self.album.slug}/{self.job.pk}-{sha[:16]}.{FORMAT_EXTENSIONS[verified.format]}"
        final = media_path(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
        try:
            with transaction.atomic():
                image = Image.objects.create(
                    file=relative,
                    width=verified.width,
                    height=verified.height,
                    file_size=final.stat().st_size,
                    sha256=sha,
                    perceptual_hash=verified.perceptual_hash,
                    source_url=candidate.url[:2000],
                    source_page_url=candidate.page_url[:2000],
                    fetched_at=timezone.now(),
                    title=(candidate.alt or Path(urlsplit(candidate.url).path).name)[:300],
                    created_by=self.job.created_by,
                )
                if candidate.alt:
                    Label.objects.create(
                        image=image, label_type=Label.LabelType.CAPTION, text=candidate.alt, source="alt"
                    )
                album_add_images(album=self.album, images=[image])
        except BaseException:
            with suppress(FileNotFoundError):
                final.unlink()
            raise
        self.shas.add(sha)
        self.hashes.append(verified.perceptual_hash)
        self.job.images_downloaded += 1
        self.save()
