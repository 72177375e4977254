"""Label every image of an album, with a progress bar.

    python manage.py label_album my-album                      # in this process
    python manage.py label_album 12 --force --prompt-type sd_training --backend claude-docker
    python manage.py label_album my-album --queue               # on the labeling workers, followed here

In-process runs retry transient failures (timeout, rate limit, engine not answering) with the
same backoff as the workers, and record per-image failures without stopping.
"""

from __future__ import annotations

import random
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from albums.models import Album
from imagineer.errors import ApplicationError
from labeling import services
from labeling.backends import BACKENDS, PROMPT_TYPES, TransientLabelError
from labeling.models import LabelingJob
from labeling.selectors import labeling_job_progress


class Command(BaseCommand):
    help = "Label an album's images with the configured labeler (captions, tags, NSFW rating)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("album", help="album id or slug")
        parser.add_argument("--force", action="store_true", help="relabel images that already have labels")
        parser.add_argument(
            "--prompt-type",
            default="default",
            choices=PROMPT_TYPES,
            help="default (caption + tags + NSFW rating) or sd_training (a caption written for LoRA training).",
        )
        parser.add_argument("--backend", choices=BACKENDS, help=f"default: {settings.IMAGINEER_LABELER}")
        parser.add_argument("--queue", action="store_true", help="run on the labeling workers and follow progress")
        parser.add_argument("--timeout", type=int, default=24 * 3600, help="with --queue: stop following after N s")

    def handle(self, *args: Any, **options: Any) -> None:
        album = self._album(options["album"])
        try:
            job = services.album_label_start(
                album=album,
                prompt_type=options["prompt_type"],
                force=options["force"],
                backend=options["backend"],
                enqueue=options["queue"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"Labeling job {job.pk}: album {album.name!r}, {job.progress_total} images, backend {job.backend}"
        )
        if options["queue"]:
            self._follow(job, options["timeout"])
        else:
            self._run_here(job)
        job.refresh_from_db()
        progress = labeling_job_progress(job=job)
        for error in progress["errors"]:
            self.stderr.write(f"  image {error['image_id']}: {error['error']}")
        self.stdout.write(
            f"{job.status}: {job.done} labelled, {job.failed} failed, {job.skipped} skipped of {job.progress_total}"
        )
        if job.status == LabelingJob.Status.FAILED:
            raise CommandError("No image could be labelled.")

    @staticmethod
    def _album(value: str) -> Album:
        album = Album.objects.filter(pk=int(value)).first() if value.isdigit() else None
        album = album or Album.objects.filter(slug=value).first()
        if album is None:
            raise CommandError(f"No album with id or slug {value!r}.")
        return album

    def _run_here(self, job: LabelingJob) -> None:
        item_ids = services.labeling_job_fan_out(job_id=job.pk, enqueue=False)
        job.refresh_from_db()
        with tqdm(total=job.progress_total, initial=job.skipped, unit="image", file=self.stderr) as bar:
            for item_id in item_ids:
                self._label_with_retries(item_id)
                bar.update(1)

    @staticmethod
    def _label_with_retries(item_id: int) -> None:
        retries = settings.IMAGINEER_LABEL_MAX_RETRIES
        for attempt in range(retries + 1):
            try:
                services.labeling_job_item_label(
                    item_id=item_id, final_attempt=attempt == retries, task_id=f"command-{item_id}"
                )
                return
            except TransientLabelError:
                base = settings.IMAGINEER_LABEL_RETRY_BACKOFF
                time.sleep(base * 2**attempt + random.uniform(0, base))

    def _follow(self, job: LabelingJob, timeout: int) -> None:
        deadline = time.monotonic() + timeout
        with tqdm(total=job.progress_total, unit="image", file=self.stderr) as bar:
            while time.monotonic() < deadline:
                job.refresh_from_db()
                bar.total = job.progress_total
                bar.update(job.processed - bar.n)
                if not job.is_active:
                    return
                time.sleep(1)
        raise CommandError(f"Job {job.pk} still {job.status} after {timeout}s; it goes on on the workers.")
