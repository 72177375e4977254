"""The default-queue side of a finishing job: claim it, render the cards, write the exports.

Progress goes to the job row (stage, done, total) at most every ``PROGRESS_INTERVAL``
seconds; the same write is the heartbeat, and a cancel seen there stops the work between
cards. Imported by ``cards.tasks`` inside the task body only.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from django.conf import settings

from albums.services.files import media_path
from cards.models import FinishingJob
from cards.services.finishing import deck_export, deck_finish
from cards.services.sources import CardSource, album_card_sources
from imagineer import jobs
from imagineer.errors import ApplicationError

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.25


class FinishingStopped(Exception):
    """The job was cancelled (or another worker took it over): stop between cards."""


def job_sources(job: FinishingJob) -> list[CardSource]:
    """The deck's cards; with a hires pass done, each pick's art is the pass's output."""
    sources = album_card_sources(album=job.album)
    hires: dict[str, str] = (job.result or {}).get("hires") or {}
    if not job.hires:
        return sources
    replaced = []
    for source in sources:
        relative = hires.get(str(source.image.pk)) if source.image is not None else None
        if relative:
            source = dataclasses.replace(
                source,
                art=media_path(relative),
                art_key=f"hires:{Path(relative).name}",
            )
        replaced.append(source)
    return replaced


class _Progress:
    def __init__(self, job: FinishingJob, worker: str) -> None:
        self.job, self.worker = job, worker
        self.throttle = jobs.Throttle(PROGRESS_INTERVAL)
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage = stage
            self.throttle.reset()
        if not self.throttle.ready() and done < total:
            return
        held = jobs.beat(
            FinishingJob, [self.job.pk], worker=self.worker, stage=stage, progress_done=done, progress_total=total
        )
        if not held or jobs.cancel_requested(FinishingJob, [self.job.pk]):
            raise FinishingStopped


def _card_list(sources: Any) -> list[dict[str, Any]]:
    return [{"index": source.index, "title": source.title} for source in sources]


def finishing_run(*, job_id: int, task_id: str) -> dict:
    """Claim the job and do it; returns a summary (the task's result)."""
    worker = jobs.worker_name()
    if not jobs.claim_one(FinishingJob, job_id, task_id=task_id, worker=worker):
        return {"claimed": False}
    job = FinishingJob.objects.select_related("album", "design", "created_by").get(pk=job_id)
    progress = _Progress(job, worker)
    previous = dict(job.result or {})
    back_art = media_path(previous["back"]) if previous.get("back") else None
    try:
        sources = job_sources(job)
        if job.formats:
            exported = deck_export(
                album=job.album,
                design=job.design,
                formats=job.formats,
                output_dir=media_path(f"exports/{job.album.slug}/job-{job.pk}"),
                sources=sources,
                duplex=job.duplex,
                force=job.force,
                progress=progress,
                created_by=job.created_by,
                back_art=back_art,
            )
            finish = exported.finish
            root = Path(settings.MEDIA_ROOT).resolve()
            files = {name: str(path.resolve().relative_to(root)) for name, path in exported.files.items()}
        else:
            finish = deck_finish(
                album=job.album,
                design=job.design,
                sources=sources,
                force=job.force,
                progress=progress,
                created_by=job.created_by,
                back_art=back_art,
            )
            files = {}
    except FinishingStopped:
        jobs.job_cancelled(FinishingJob, [job.pk], worker=worker)
        return {"claimed": True, "cancelled": True}
    except ApplicationError as exc:
        jobs.job_fail(FinishingJob, [job.pk], error=exc.message, worker=worker)
        return {"claimed": True, "failed": exc.message}
    except jobs.TRANSIENT_DB_ERRORS:
        raise
    except Exception as exc:
        logger.exception("Finishing job %s failed", job.pk)
        jobs.job_fail(FinishingJob, [job.pk], error=f"Finishing failed: {exc}", worker=worker)
        return {"claimed": True, "failed": str(exc)}
    result = {
        **previous,
        "files": files,
        "cards": len(finish.cards),
        "rendered": finish.rendered,
        "reused": finish.reused,
        "missing": _card_list(finish.missing),
        "failed": [{"index": source.index, "title": source.title, "error": error} for source, error in finish.failed],
    }
    jobs.job_finish(FinishingJob, [job.pk], worker=worker, result=result)
    return {"claimed": True, "cards": len(finish.cards), "files": sorted(files)}
