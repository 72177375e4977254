"""A default worker SIGKILLed in the middle of finishing a deck: the message comes back after the
broker's visibility timeout, the job's heartbeat is stale by then, and a new worker finishes the
job. Every card ends up exactly once, and nothing is left on disk that no card points at."""

from __future__ import annotations

import time
import zipfile
from decimal import Decimal

import pytest

from albums.models import Image
from albums.services.files import media_path, media_sweep
from cards.models import FinishedCard, FinishingJob
from cards.services.designs import design_create
from cards.services.jobs import finishing_start
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

QUICK = {"IMAGINEER_JOB_STALE_SECONDS": "5", "CELERY_VISIBILITY_TIMEOUT": "4"}
ROWS = 24


def test_a_killed_worker_is_taken_over_and_every_card_is_made_once(celery_worker, card_deck_template, run_album):
    design = design_create(template=card_deck_template, name="Classic", frame_width_mm=Decimal("1.5"))
    album = run_album(card_deck_template, rows=ROWS, size=(256, 360))
    first = celery_worker("default", extra_env=QUICK)
    job = finishing_start(album=album, design=design, formats=["zip"])

    def rendering() -> bool:
        job.refresh_from_db()
        return job.stage == "finish" and job.progress_done >= 3

    wait_for(rendering, timeout=60, message="the first worker to render a few cards")
    first.kill()
    job.refresh_from_db()
    assert job.status == FinishingJob.Status.RUNNING and job.progress_done < ROWS + 1
    made_before = FinishedCard.objects.filter(album=album).count()
    assert 1 <= made_before < ROWS + 1

    # kombu scans for unacknowledged messages on a worker's first empty poll and then only every
    # ~100 s (unacked_restore_interval x unacked_restore_throttle): start the new worker once the
    # message is past its visibility timeout and the heartbeat is stale, so that first scan finds it.
    time.sleep(int(QUICK["IMAGINEER_JOB_STALE_SECONDS"]) + 1)
    celery_worker("default", extra_env=QUICK)

    def finished() -> bool:
        job.refresh_from_db()
        return job.is_finished

    wait_for(finished, timeout=60, message="a new worker to finish the job")
    assert job.status == FinishingJob.Status.SUCCEEDED, job.error
    assert job.attempts == 2
    assert job.result["failed"] == [] and job.result["missing"] == []

    # Every card exactly once: one front per row and one back, each with its own image.
    cards = list(FinishedCard.objects.filter(album=album, design=design).select_related("image"))
    fronts = sorted(card.position for card in cards if card.side == FinishedCard.Side.FRONT)
    assert fronts == list(range(1, ROWS + 1))
    assert [card.position for card in cards if card.side == FinishedCard.Side.BACK] == [0]
    recorded = {card.image.file.name for card in cards}
    assert len(recorded) == ROWS + 1
    # No image rows left behind by the killed worker (cards it rendered were kept or replaced).
    assert Image.objects.filter(recipe__has_key="finished_card").count() == ROWS + 1
    with zipfile.ZipFile(media_path(job.result["files"]["zip"])) as archive:
        assert len(archive.namelist()) == ROWS + 1

    # On disk: the recorded cards, plus at most the temporary file of a write the kill cut
    # short, which the reconciler's sweep removes; nothing else.
    relative = f"finished/{album.slug}/design-{design.pk}"
    on_disk = {f"{relative}/{path.name}" for path in media_path(relative).iterdir()}
    leftovers = on_disk - recorded
    assert all(name.rsplit("/", 1)[1].startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers
    assert recorded <= on_disk
    media_sweep(older_than=0)
    assert {f"{relative}/{path.name}" for path in media_path(relative).iterdir()} == recorded
