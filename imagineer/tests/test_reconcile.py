"""The reconciler's rules (imagineer/reconcile.py) on real PostgreSQL and a real Redis broker.

Each rule is driven through the rows a crash really leaves (a stale heartbeat, a queued row
whose message is not in the broker, a run whose jobs all finished) and the files (a stale
temporary, an image no row points at, a sidecar without its image). Two passes run at once
on two database connections.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from albums.services.files import media_sweep
from generation.models import BatchGenerationRun, GenerationJob
from imagineer import jobs, reconcile
from imagineer.tests.factories import AlbumFactory, ImageFactory

Status = GenerationJob.Status


@pytest.fixture
def broker(settings, redis_server):
    """The broker on a private redis-server; the test process publishes to it."""
    from imagineer.faultlab import Lab

    settings.CELERY_BROKER_URL = redis_server.url
    from imagineer.celery import app

    original = app.conf.broker_url
    app.conf.broker_url = redis_server.url
    Lab._pools_reset()
    yield redis_server
    app.conf.broker_url = original
    Lab._pools_reset()


@pytest.fixture
def generation_kind():
    """GenerationJob in the registry, resent as one chunk message per call (as the app does)."""
    from generation.services.jobs import chunks_enqueue

    registered = {kind.model for kind in jobs.kinds()}
    if GenerationJob not in registered:
        jobs.kind_register(GenerationJob, resend=lambda pks: chunks_enqueue(list(pks), chunk_size=len(pks)))
        yield
        jobs._KINDS.pop(GenerationJob._meta.label, None)
    else:
        yield


def _job(**fields) -> GenerationJob:
    values = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7.0, "seed": 1}
    values.update(fields)
    return GenerationJob.objects.create(**values)


def _stale(settings, **fields) -> GenerationJob:
    long_ago = timezone.now() - timedelta(seconds=settings.IMAGINEER_JOB_STALE_SECONDS + 60)
    defaults = {"status": Status.RUNNING, "worker": "gone:1", "task_id": "old", "attempts": 1}
    return _job(heartbeat_at=long_ago, started_at=long_ago, **{**defaults, **fields})


@pytest.mark.django_db(transaction=True)
def test_stale_work_is_requeued_failed_at_its_limit_or_cancelled(settings, broker, generation_kind):
    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 3
    requeue = _stale(settings)
    exhausted = _stale(settings, attempts=3)
    cancelling = _stale(settings, status=Status.CANCELLING, cancel_requested=True)
    live = _job(status=Status.RUNNING, worker="alive:1", task_id="live", attempts=1, heartbeat_at=timezone.now())

    report = reconcile.reconcile(sweep_files=False)

    assert (report.requeued, report.failed, report.cancelled) == (1, 1, 1)
    requeue.refresh_from_db()
    assert requeue.status == Status.QUEUED and requeue.worker == "" and requeue.attempts == 1
    assert requeue.task_id != "old" and requeue.task_id in reconcile.broker_task_ids()
    exhausted.refresh_from_db()
    assert exhausted.status == Status.FAILED and "Gave up after 3 attempts" in exhausted.error
    assert "gone:1" in exhausted.error
    cancelling.refresh_from_db()
    assert cancelling.status == Status.CANCELLED
    live.refresh_from_db()
    assert (live.status, live.task_id) == (Status.RUNNING, "live")
    assert reconcile.reconcile(sweep_files=False).requeued == 0  # nothing left to do


@pytest.mark.django_db(transaction=True)
def test_a_queued_row_whose_message_is_gone_is_sent_again_once(settings, broker, generation_kind):
    settings.IMAGINEER_RECONCILE_LOST_SECONDS = 0.5
    from generation.services.jobs import chunks_enqueue

    waiting = _job()
    chunks_enqueue([waiting.pk])  # outside a transaction: sent now
    waiting.refresh_from_db()
    lost = _job(task_id="lost-in-a-broker-restart")
    cancelled_meanwhile = _job(task_id="lost-too", cancel_requested=True)

    first = reconcile.reconcile(sweep_files=False)
    assert first.resent == 0  # missing once is not yet lost (a message may be between queue and worker)
    assert first.cancelled == 1
    time.sleep(0.6)
    second = reconcile.reconcile(sweep_files=False)
    assert second.resent == 1
    lost.refresh_from_db()
    present = reconcile.broker_task_ids()
    assert lost.status == Status.QUEUED and lost.task_id != "lost-in-a-broker-restart" and lost.task_id in present
    assert GenerationJob.objects.get(pk=waiting.pk).task_id == waiting.task_id  # its message was there
    assert GenerationJob.objects.get(pk=cancelled_meanwhile.pk).status == Status.CANCELLED
    time.sleep(0.6)
    assert reconcile.reconcile(sweep_files=False).resent == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_jobs_all_finished_gets_its_final_status(settings, broker, generation_kind):
    album = AlbumFactory()
    done = BatchGenerationRun.objects.create(album=album, total_items=2, status=BatchGenerationRun.Status.RUNNING)
    _job(run=done, row_index=0, status=Status.SUCCEEDED)
    _job(run=done, row_index=1, status=Status.FAILED, error="out of memory")
    going = BatchGenerationRun.objects.create(album=album, total_items=2, status=BatchGenerationRun.Status.RUNNING)
    _job(run=going, row_index=0, status=Status.SUCCEEDED)
    _job(run=going, row_index=1, status=Status.RUNNING, worker="alive:1", heartbeat_at=timezone.now())

    assert reconcile.reconcile(sweep_files=False).settled == 1
    done.refresh_from_db()
    going.refresh_from_db()
    assert done.status == BatchGenerationRun.Status.COMPLETED_WITH_ERRORS
    assert (done.completed_items, done.failed_items) == (1, 1)
    assert going.status == BatchGenerationRun.Status.RUNNING


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_requeue_each_row_once(settings, broker, generation_kind):
    rows = [_stale(settings, task_id=f"old-{n}") for n in range(8)]
    barrier = threading.Barrier(2)
    reports: list[reconcile.Report] = []
    errors: list[BaseException] = []

    def one_pass() -> None:
        try:
            barrier.wait()
            reports.append(reconcile.reconcile(sweep_files=False))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(report.requeued for report in reports) == len(rows)
    task_ids = set(GenerationJob.objects.values_list("task_id", flat=True))
    assert GenerationJob.objects.filter(status=Status.QUEUED, attempts=1).count() == len(rows)
    # Every message sent is the one its rows point at: no row was sent twice.
    present = reconcile.broker_task_ids()
    assert task_ids <= present and len(present) == len(task_ids)


@pytest.mark.django_db
def test_media_sweep_removes_what_a_crash_left_and_keeps_the_rest(media_root):
    old = time.time() - 120
    folder = media_root / "outputs" / "deck"
    folder.mkdir(parents=True)
    kept_image = ImageFactory()  # its file and row exist
    stale_tmp = folder / ".01-ace.png.abc123.tmp"
    orphan_png, orphan_sidecar = folder / "02-two.png", folder / "02-two.json"
    lone_sidecar = folder / "03-three.json"
    fresh_tmp = folder / ".04-four.png.def456.tmp"
    scraped_part = media_root / "scraped" / ".incoming" / "tmpabc.part"
    scraped_part.parent.mkdir(parents=True)
    for path in (stale_tmp, orphan_png, orphan_sidecar, lone_sidecar, fresh_tmp, scraped_part):
        path.write_bytes(b"x")
    for path in (stale_tmp, orphan_png, orphan_sidecar, lone_sidecar, scraped_part):
        os.utime(path, (old, old))

    removed = media_sweep(older_than=60)

    assert removed == {"temporary": 2, "orphan_images": 1, "orphan_sidecars": 2}
    assert not any(p.exists() for p in (stale_tmp, orphan_png, orphan_sidecar, lone_sidecar, scraped_part))
    assert fresh_tmp.exists()
    assert (media_root / kept_image.file.name).exists()
    assert media_sweep(older_than=60) == {"temporary": 0, "orphan_images": 0, "orphan_sidecars": 0}


@pytest.mark.django_db(transaction=True)
def test_a_run_started_while_the_broker_is_down_is_accepted_and_sent_when_it_is_back(
    settings, broker, generation_kind, api_as, tiny_model_dir
):
    settings.IMAGINEER_MODEL = ""
    settings.IMAGINEER_TINY_MODEL_DIR = tiny_model_dir
    settings.IMAGINEER_RECONCILE_LOST_SECONDS = 0.5
    from imagineer.faultlab import Lab

    template = Lab.template()
    client = api_as("superuser")
    broker.stop()
    response = client.post(
        f"/api/batch-templates/{template.pk}/generate", {"theme": "ink", "overrides": {"steps": 2}}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert "queued when the broker is back" in body["queued"] and body["id"]
    assert response["X-Imagineer-Queued"] == "when-broker-back"
    run = BatchGenerationRun.objects.get()
    assert run.pk == body["id"] and run.jobs.filter(status=Status.QUEUED).count() == run.total_items

    assert reconcile.reconcile(sweep_files=False).resent == 0  # broker still down: nothing can be sent
    broker.start()
    reconcile.reconcile(sweep_files=False)
    time.sleep(0.6)
    assert reconcile.reconcile(sweep_files=False).resent == run.total_items
    present = reconcile.broker_task_ids()
    assert set(run.jobs.values_list("task_id", flat=True)) <= present


@pytest.mark.django_db(transaction=True)
def test_the_run_page_form_with_the_broker_down_says_the_run_is_queued_for_later(
    settings, broker, generation_kind, client, tiny_model_dir
):
    settings.IMAGINEER_MODEL = ""
    settings.IMAGINEER_TINY_MODEL_DIR = tiny_model_dir
    from django.urls import reverse

    from imagineer.faultlab import Lab
    from imagineer.tests.factories import UserFactory

    template = Lab.template()
    client.force_login(UserFactory(role="creator"))
    broker.stop()
    response = client.post(
        reverse("generation:template-detail", args=[template.slug]),
        {"theme": "ink", "seed_policy": "random", "steps": 2},
        follow=True,
    )
    assert response.status_code == 200
    run = BatchGenerationRun.objects.get()
    assert response.redirect_chain[-1][0] == reverse("generation:run-detail", args=[run.pk])
    assert "queued when the broker is back" in response.content.decode()
    assert run.jobs.filter(status=Status.QUEUED).count() == run.total_items


@pytest.mark.django_db(transaction=True)
def test_every_kind_heals_a_labeling_job_finishes_when_the_reconciler_fails_its_last_item(settings, broker):
    """Labeling, scraping and training are on the same rules: a stale item past its attempts
    fails, and its job (counted by workers, which never counted that item) is settled."""
    from imagineer.tests.factories import LabelingJobFactory, LabelingJobItemFactory, ScrapeJobFactory
    from labeling.models import LabelingJob, LabelingJobItem

    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 2
    long_ago = timezone.now() - timedelta(seconds=settings.IMAGINEER_JOB_STALE_SECONDS + 60)
    job = LabelingJobFactory(status=LabelingJob.Status.RUNNING, progress_total=2, done=1)
    LabelingJobItemFactory(job=job, status=LabelingJobItem.Status.SUCCEEDED)
    stuck = LabelingJobItemFactory(
        job=job, status=LabelingJobItem.Status.RUNNING, attempts=2, worker="gone:7", heartbeat_at=long_ago
    )
    scrape = ScrapeJobFactory(status="running", attempts=1, worker="gone:8", heartbeat_at=long_ago, task_id="x")

    report = reconcile.reconcile(sweep_files=False)

    stuck.refresh_from_db()
    assert stuck.status == LabelingJobItem.Status.FAILED and "Gave up after 2 attempts" in stuck.error
    job.refresh_from_db()
    assert job.status == LabelingJob.Status.COMPLETED_WITH_ERRORS and (job.done, job.failed) == (1, 1)
    scrape.refresh_from_db()
    assert scrape.status == "queued" and scrape.task_id != "x" and scrape.task_id in reconcile.broker_task_ids()
    assert report.failed == 1 and report.requeued == 1 and report.settled >= 1
