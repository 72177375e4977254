"""python manage.py scrape URL [URL ...] --album NAME [--max N] [--max-pages N] [--depth N]

Runs the crawl in this process (no worker needed) with a progress bar; the job is recorded
like one started from the web, so its counters and problems show on its page afterwards.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from tqdm import tqdm

from albums.models import Album, ScrapeJob
from albums.services.scraping import scrape_job_create, scrape_job_run
from imagineer.errors import ApplicationError, command_error


class Command(BaseCommand):
    help = "Collect images from web pages into an album (respects robots.txt; refuses private addresses)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("urls", nargs="+", metavar="URL", help="Start page(s), http:// or https://.")
        parser.add_argument(
            "--album", required=True, help="Album name or slug: an existing album, or the name of a new one."
        )
        parser.add_argument("--max", type=int, default=100, dest="max_images", help="Most images to add (100).")
        parser.add_argument("--max-pages", type=int, default=20, help="Most pages to fetch (20).")
        parser.add_argument("--depth", type=int, default=1, help="How many links away from a start page to go (1).")
        parser.add_argument("--min-size", type=int, default=128, help="Smallest width and height kept, in pixels.")
        parser.add_argument("--all-sites", action="store_true", help="Follow links to other sites too.")
        parser.add_argument("--user", help="Username recorded as the album's and images' creator.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        name = options["album"].strip()
        album = Album.objects.filter(Q(slug=name) | Q(name=name)).order_by("id").first()
        try:
            job = scrape_job_create(
                user=None,
                start_urls=options["urls"],
                album=album,
                album_name="" if album else name,
                max_images=options["max_images"],
                max_pages=options["max_pages"],
                max_depth=options["depth"],
                same_site_only=not options["all_sites"],
                min_width=options["min_size"],
                min_height=options["min_size"],
                enqueue=False,
            )
        except ApplicationError as exc:
            raise command_error(exc) from None
        if user is not None:
            ScrapeJob.objects.filter(pk=job.pk).update(created_by=user)
            Album.objects.filter(pk=job.album_id, created_by=None).update(created_by=user)

        verb = "Adding to" if album else "Creating"
        self.stdout.write(f"{verb} album {job.album.name!r} (scrape job {job.pk}).")
        # The bar redraws in place with "\r": give tqdm the raw stream, not Django's line-ending wrapper.
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(
            total=job.max_images, unit="img", desc="images", file=stream, disable=options["verbosity"] == 0
        ) as bar:

            def progress(current: ScrapeJob) -> None:
                bar.update(current.images_downloaded - bar.n)
                bar.set_postfix(pages=current.pages_fetched, skipped=current.images_skipped, refresh=False)

            job = scrape_job_run(job_id=job.pk, on_progress=progress)

        self.stdout.write(
            f"{job.status}: {job.images_downloaded} images added from {job.pages_fetched} pages, "
            f"{job.images_skipped} images and {job.pages_skipped} pages skipped."
        )
        for reason, count in sorted(job.skip_reasons.items(), key=lambda item: -item[1]):
            self.stdout.write(f"  {reason}: {count}")
        if job.status == ScrapeJob.Status.FAILED:
            raise CommandError(job.error)
