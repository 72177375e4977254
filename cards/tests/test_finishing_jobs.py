"""Finishing jobs on the job base: real Celery workers (default queue, and the gpu queue for the
hires pass with the tiny model on CPU), PostgreSQL, Redis; outputs read back from disk."""

from __future__ import annotations

import json
import zipfile
from decimal import Decimal

import pytest
from PIL import Image as PILImage

from albums.services.files import media_path
from cards.models import FinishedCard, FinishingJob
from cards.services.designs import design_create
from cards.services.jobs import finishing_cancel, finishing_start
from generation.engine.png import infotext_parse
from generation.tests.support import WORKER_ENV
from imagineer.errors import ApplicationError
from imagineer.testing import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def classic(card_deck_template):
    return design_create(template=card_deck_template, name="Classic", frame_width_mm=Decimal("1.5"))


def _finished(job: FinishingJob, timeout: float = 120) -> FinishingJob:
    def done() -> bool:
        job.refresh_from_db()
        return job.is_finished

    wait_for(done, timeout=timeout, message=f"finishing job {job.pk} to end")
    return job


def test_a_finishing_job_renders_the_picks_writes_exports_and_lists_missing_cards(
    celery_worker, classic, card_deck_template, run_album
):
    album = run_album(card_deck_template, rows=4, missing={3})
    celery_worker("default")
    job = finishing_start(album=album, design=classic, formats=["zip", "tts", "zip"])
    assert job.formats == ["zip", "tts"] and job.status == FinishingJob.Status.QUEUED and job.task_id
    job = _finished(job)
    assert job.status == FinishingJob.Status.SUCCEEDED, job.error
    assert job.attempts == 1 and job.worker and job.started_at and job.finished_at
    # The last stage's progress, complete.
    assert job.stage == "tts" and job.progress_done == job.progress_total > 0
    assert job.result["missing"] == [{"index": 3, "title": "Three"}]
    assert (job.result["cards"], job.result["rendered"], job.result["failed"]) == (3, 4, [])
    assert sorted(job.result["files"]) == ["tts", "zip"]
    with zipfile.ZipFile(media_path(job.result["files"]["zip"])) as archive:
        assert sorted(archive.namelist()) == ["001-ace.png", "002-two.png", "004-four.png", "back.png"]
    assert FinishedCard.objects.filter(album=album, design=classic).count() == 4

    # A second job reuses the unchanged cards.
    again = _finished(finishing_start(album=album, design=classic))
    assert again.status == FinishingJob.Status.SUCCEEDED
    assert (again.result["rendered"], again.result["reused"], again.result["files"]) == (0, 4, {})


def test_bad_requests_are_refused_naming_the_field(classic, card_deck_template, zodiac_template, run_album):
    album = run_album(card_deck_template, rows=2)
    with pytest.raises(ApplicationError) as error:
        finishing_start(album=album, design=classic, formats=["gif"])
    assert "formats" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        finishing_start(album=album, design=classic, hires=True, hires_scale=4)
    assert "hires_scale" in error.value.fields
    with pytest.raises(ApplicationError) as error:
        finishing_start(album=album, design=classic, hires=True, hires_denoise=0.95)
    assert "hires_denoise" in error.value.fields
    other = design_create(template=zodiac_template, name="Zodiac")
    with pytest.raises(ApplicationError) as error:
        finishing_start(album=album, design=other)
    assert "design" in error.value.fields
    assert not FinishingJob.objects.exists()


def test_cancel_a_queued_job_and_a_running_one(celery_worker, classic, card_deck_template, run_album):
    album = run_album(card_deck_template, rows=30)
    queued = finishing_start(album=album, design=classic)
    queued = finishing_cancel(job=queued)
    assert queued.status == FinishingJob.Status.CANCELLED and queued.cancel_requested
    with pytest.raises(ApplicationError, match="already cancelled"):
        finishing_cancel(job=queued)

    celery_worker("default")
    job = finishing_start(album=album, design=classic, formats=["pnp-a4"])

    def rendering() -> bool:
        job.refresh_from_db()
        return job.stage == "finish" and job.progress_done >= 2

    wait_for(rendering, timeout=60, message="the job to render a few cards")
    job = finishing_cancel(job=job)
    assert job.status == FinishingJob.Status.CANCELLING
    job = _finished(job)
    assert job.status == FinishingJob.Status.CANCELLED
    assert 1 <= FinishedCard.objects.filter(album=album).count() < 31
    assert not media_path(f"exports/{album.slug}/job-{job.pk}/print-and-play-a4.pdf").exists()
    # The first job's message, revoked, never ran anything.
    queued.refresh_from_db()
    assert queued.attempts == 0


def test_hires_pass_on_the_gpu_worker_then_finishing_on_the_default_queue(
    celery_worker, classic, card_deck_template, run_album
):
    album = run_album(card_deck_template, rows=2, size=(64, 96))
    celery_worker("gpu", extra_env=WORKER_ENV)
    celery_worker("default")
    job = finishing_start(album=album, design=classic, hires=True, hires_scale=2.0, hires_denoise=0.5)
    assert job.stage == "hires"
    job = _finished(job, timeout=180)
    assert job.status == FinishingJob.Status.SUCCEEDED, job.error
    # One attempt for the whole job, though it went through two queues.
    assert job.attempts == 1 and job.stage == "finish"
    hires = job.result["hires"]
    assert len(hires) == 2
    for relative in hires.values():
        with PILImage.open(media_path(relative)) as image:
            assert image.size == (128, 192)  # 2x, multiples of 8
            parsed = infotext_parse(image.info["parameters"])
        text = image.info["parameters"]
        assert "Hires upscale: 2" in text and "Hires upscaler: Lanczos" in text and "Denoising strength: 0.5" in text
        assert parsed is not None
        sidecar = json.loads(media_path(relative).with_suffix(".json").read_text())
        assert sidecar["hires"]["scale"] == 2.0 and sidecar["hires"]["denoise"] == 0.5
        assert sidecar["hires"]["steps"] >= 2
    cards = list(FinishedCard.objects.filter(album=album, side=FinishedCard.Side.FRONT).order_by("position"))
    assert len(cards) == 2
    for card in cards:
        with PILImage.open(media_path(card.image.file.name)) as image:
            assert image.size == (815, 1110)

    # The same settings again: the hires art is reused (same files), the cards are current.
    again = _finished(finishing_start(album=album, design=classic, hires=True, hires_denoise=0.5), timeout=180)
    assert again.status == FinishingJob.Status.SUCCEEDED, again.error
    assert again.result["hires"] == hires and again.result["reused"] == 3
    # Without hires the cards are made from the picks again: a different render.
    plain = _finished(finishing_start(album=album, design=classic))
    assert plain.result["rendered"] == 2


def test_a_back_generated_from_the_prompt_once_per_deck(celery_worker, zodiac_template):
    from generation.tests.decks_support import deck_build

    design = design_create(
        template=zodiac_template, name="Starry", title_template="{sign}", back_prompt="a starry night card back"
    )
    album = deck_build(slots=2, takes=1, titles=["Aries", "Taurus"])
    celery_worker("gpu", extra_env=WORKER_ENV)
    celery_worker("default")
    job = finishing_start(album=album, design=design)
    assert job.stage == "back"
    job = _finished(job, timeout=180)
    assert job.status == FinishingJob.Status.SUCCEEDED, job.error
    back_file = media_path(job.result["back"])
    with PILImage.open(back_file) as art:
        # The deck's generation width (64), at the card's aspect (trim + bleed, 69 x 94 mm).
        assert art.size == (64, 88)
        fields = infotext_parse(art.info["parameters"])
    assert fields["prompt"] == "a starry night card back"
    sidecar = json.loads(back_file.with_suffix(".json").read_text())
    assert sidecar["card_back"] == {"album": album.pk, "design": design.pk}
    back = FinishedCard.objects.get(album=album, design=design, side=FinishedCard.Side.BACK)
    with PILImage.open(media_path(back.image.file.name)) as card:
        assert card.size == (815, 1110)
        # Generated art, not the plain back colour.
        assert len(card.crop((200, 300, 600, 800)).getcolors(maxcolors=1 << 20) or []) > 100
    made = back_file.stat().st_mtime_ns

    again = _finished(finishing_start(album=album, design=design), timeout=180)
    assert again.status == FinishingJob.Status.SUCCEEDED, again.error
    assert again.result["back"] == job.result["back"] and back_file.stat().st_mtime_ns == made
    assert again.result["reused"] == 3
