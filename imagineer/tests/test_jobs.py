"""The shared job lifecycle (imagineer/jobs.py) on real PostgreSQL, with GenerationJob as the kind.

Races use real threads, each with its own database connection; revoke goes through the real
broker to a real worker; the dropped connection is a real backend terminated by PostgreSQL.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from generation.models import GenerationJob
from imagineer import jobs
from imagineer.testing import wait_for

Status = GenerationJob.Status


def _job(**fields) -> GenerationJob:
    values = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2, "guidance_scale": 7.0, "seed": 1}
    values.update(fields)
    return GenerationJob.objects.create(**values)


def _one(pk: int):
    return GenerationJob.objects.filter(pk=pk)


def _stale_now(pk: int) -> None:
    """The holder stopped beating long ago (it died)."""
    from django.conf import settings

    _one(pk).update(heartbeat_at=timezone.now() - timedelta(seconds=settings.IMAGINEER_JOB_STALE_SECONDS + 1))


@pytest.mark.django_db(transaction=True)
def test_claim_race_between_threads_has_one_winner():
    job = _job(task_id="t-0")
    barrier = threading.Barrier(6)
    won: list[str] = []

    def contender(number: int) -> None:
        try:
            barrier.wait()
            # Different task ids and workers: only the queued -> running update may win.
            if jobs.claim(_one(job.pk), task_id=f"t-{number}", worker=f"host:{number}"):
                won.append(f"host:{number}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contender, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    job.refresh_from_db()
    assert len(won) == 1
    assert job.status == Status.RUNNING and job.worker == won[0] and job.attempts == 1
    assert job.heartbeat_at is not None and job.started_at is not None


@pytest.mark.django_db
def test_live_holder_keeps_its_row_stale_one_is_taken_over(settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    job = _job(task_id="t-a")
    assert jobs.claim(_one(job.pk), task_id="t-a", worker="host:1") == [job.pk]
    # Another message (another task id) while the holder beats: refused.
    assert jobs.claim(_one(job.pk), task_id="t-b", worker="host:2") == []
    # The holder stops beating: its row is stale, the next worker takes it, attempt 2.
    _one(job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert _one(job.pk).filter(jobs.stale_q(GenerationJob)).exists()
    assert jobs.claim(_one(job.pk), task_id="t-b", worker="host:2") == [job.pk]
    job.refresh_from_db()
    assert (job.worker, job.task_id, job.attempts) == ("host:2", "t-b", 2)
    # The old worker wakes up: its writes no longer apply (it does not hold the row).
    assert jobs.beat(GenerationJob, [job.pk], worker="host:1") == 0
    assert jobs.job_finish(GenerationJob, [job.pk], worker="host:1") == 0
    assert jobs.job_finish(GenerationJob, [job.pk], worker="host:2") == 1
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.finished_at is not None


@pytest.mark.django_db
def test_redelivery_of_the_same_task_reclaims_and_counts_an_attempt(settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    job = _job(task_id="t-a")
    jobs.claim(_one(job.pk), task_id="t-a", worker="host:1")
    # The broker redelivers the message to another process (a short visibility timeout) while
    # the holder still beats: heartbeats decide, the live holder keeps its row.
    assert jobs.claim(_one(job.pk), task_id="t-a", worker="host:2") == []
    # The holder died: once its heartbeat is stale the redelivered message takes the row over.
    _stale_now(job.pk)
    assert jobs.claim(_one(job.pk), task_id="t-a", worker="host:2") == [job.pk]
    # The same process retrying the same task (a transient error) does not use an attempt.
    assert jobs.claim(_one(job.pk), task_id="t-a", worker="host:2") == [job.pk]
    job.refresh_from_db()
    assert job.attempts == 2 and job.worker == "host:2"


@pytest.mark.django_db
def test_attempt_limit_fails_with_the_reason_and_the_api_shows_attempts(settings):
    from generation.api.serializers import JobSerializer

    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 3
    job = _job(task_id="t-1")
    for number in (1, 2, 3):
        assert jobs.claim(_one(job.pk), task_id="t-1", worker=f"host:{number}") == [job.pk]
        _stale_now(job.pk)  # each worker died holding it
    job.refresh_from_db()
    assert job.attempt_label == "attempt 3 of 3"
    data = JobSerializer(job, context={"request": None}).data
    assert (data["attempts"], data["attempt_limit"], data["attempt_label"]) == (3, 3, "attempt 3 of 3")
    # A fourth worker would be attempt 4: the row fails instead, saying why.
    assert jobs.claim(_one(job.pk), task_id="t-1", worker="host:4") == []
    job.refresh_from_db()
    assert job.status == Status.FAILED
    assert "Gave up after 3 attempts" in job.error and "host:3" in job.error
    # A per-row limit overrides the setting.
    other = _job(task_id="t-2", max_attempts=1)
    assert jobs.claim(_one(other.pk), task_id="t-2", worker="host:1") == [other.pk]
    _stale_now(other.pk)
    assert jobs.claim(_one(other.pk), task_id="t-2", worker="host:2") == []
    other.refresh_from_db()
    assert other.status == Status.FAILED and other.attempt_label == "attempt 1 of 1"


@pytest.mark.django_db
def test_cancel_queued_now_running_becomes_cancelling_and_the_claim_refuses_both():
    queued, running = _job(task_id="t-q"), _job(task_id="t-r")
    jobs.claim(_one(running.pk), task_id="t-r", worker="host:1")
    result = jobs.cancel(GenerationJob.objects.filter(pk__in=[queued.pk, running.pk]))
    assert result.cancelled == [queued.pk] and result.cancelling == [running.pk]
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == Status.CANCELLED and queued.finished_at is not None
    assert running.status == Status.CANCELLING and running.cancel_requested
    assert jobs.claim(_one(queued.pk), task_id="t-q", worker="host:2") == []
    # The worker sees the flag and stops: cancelling -> cancelled.
    assert jobs.cancel_requested(GenerationJob, [running.pk]) == {running.pk}
    assert jobs.job_cancelled(GenerationJob, [running.pk], worker="host:1") == 1
    running.refresh_from_db()
    assert running.status == Status.CANCELLED


@pytest.mark.django_db
def test_a_shared_message_is_revoked_only_when_none_of_its_rows_is_left():
    first, second = _job(task_id="chunk"), _job(task_id="chunk")
    assert jobs.cancel(_one(first.pk)).revoked == []
    assert jobs.cancel(_one(second.pk)).revoked == ["chunk"]


@pytest.mark.django_db(transaction=True)
def test_cancel_revokes_the_message_on_a_live_worker(celery_worker):
    from imagineer.celery import app

    celery_worker("default")
    job = _job()
    # Not due for a minute: the worker holds the message, as it would behind a long queue.
    later = app.signature("imagineer.tests.not_started", queue="default")
    task_id = jobs.enqueue_on_commit(later, _one(job.pk), countdown=60)
    assert _one(job.pk).values_list("task_id", flat=True).get() == task_id
    with transaction.atomic():
        result = jobs.cancel(_one(job.pk))
    assert result.revoked == [task_id]

    def revoked_on_worker():
        replies = app.control.inspect(timeout=2).revoked() or {}
        return any(task_id in ids for ids in replies.values())

    wait_for(revoked_on_worker, timeout=30, message="the worker to list the revoked task id")


def test_throttle_passes_at_most_once_per_interval():
    now = [0.0]
    throttle = jobs.Throttle(0.25, clock=lambda: now[0])
    passes = 0
    for _ in range(100):  # 100 steps of 10 ms = one second
        passes += throttle.ready()
        now[0] += 0.01
    assert passes == 4


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_keeps_a_long_job_fresh(settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    job = _job(task_id="t-h")
    jobs.claim(_one(job.pk), task_id="t-h", worker="host:1")
    _one(job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=59))
    with jobs.Heartbeat(GenerationJob, [job.pk], worker="host:1", interval=0.1):
        wait_for(
            lambda: _one(job.pk).filter(heartbeat_at__gt=timezone.now() - timedelta(seconds=5)).exists(),
            timeout=10,
            message="a fresh heartbeat",
        )
    assert not _one(job.pk).filter(jobs.stale_q(GenerationJob)).exists()


@pytest.mark.django_db(transaction=True)
def test_dropped_connection_is_retried_never_recorded_as_failure():
    """PostgreSQL kills the task's backend mid-work: the task reconnects, retries and finishes."""
    calls: list[int] = []
    job = _job(task_id="t-x")

    @jobs.job_task(name="imagineer.tests.flaky_job")
    def flaky(self, job_id: int) -> str:
        jobs.claim(_one(job_id), task_id=self.request.id, worker="host:1")
        calls.append(self.request.retries)
        if len(calls) == 1:
            killer = connections.create_connection("default")
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
            killer.close()
            _one(job_id).update(progress_done=1)  # the dead connection raises here
        jobs.job_finish(GenerationJob, [job_id], worker="host:1")
        return "done"

    result = flaky.apply(args=[job.pk], task_id="t-x")
    assert result.get() == "done"
    assert calls == [0, 1]
    job.refresh_from_db()
    assert job.status == Status.SUCCEEDED and job.error == "" and job.attempts == 1


def test_retry_backoff_grows_and_is_capped():
    assert [jobs.retry_countdown(n) for n in (0, 1, 2, 3, 10)] == [1, 2, 4, 8, 60]
