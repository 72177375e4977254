"""Claims and cancel without a worker: the conditional updates that make tasks idempotent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from imagineer import jobs
from imagineer.tests.factories import TrainingRunFactory
from training.models import TrainingRun
from training.services.execute import Outcome, training_claim
from training.services.runs import training_cancel, training_resume, training_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(album, creator):
    return training_start(album=album, name="Cards", trigger_word="crdz", created_by=creator, enqueue=False)


def _age(run: TrainingRun, seconds: int) -> None:
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_claim_once_then_busy_then_take_over_when_stale(run, settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    assert training_claim(run_id=run.pk, task_id="someone-else", worker="host:1") == Outcome.SKIPPED
    assert training_claim(run_id=run.pk, task_id=run.task_id, worker="host:1") == Outcome.RAN
    # The same message redelivered to another worker while the run trains (Redis's visibility
    # timeout is shorter than a training run) must not start a second trainer.
    assert training_claim(run_id=run.pk, task_id=run.task_id, worker="host:2") == Outcome.BUSY
    _age(run, 120)
    assert training_claim(run_id=run.pk, task_id=run.task_id, worker="host:2") == Outcome.RAN
    run.refresh_from_db()
    assert (run.status, run.phase, run.attempts, run.worker) == (
        TrainingRun.Status.RUNNING,
        TrainingRun.Phase.PREPARING,
        2,
        "host:2",
    )


def test_a_run_that_keeps_killing_its_worker_fails(run, settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    settings.IMAGINEER_JOB_MAX_ATTEMPTS = 3
    for number in range(3):
        assert training_claim(run_id=run.pk, task_id=run.task_id, worker=f"host:{number}") == Outcome.RAN
        _age(run, 120)
    assert training_claim(run_id=run.pk, task_id=run.task_id, worker="host:9") == Outcome.SKIPPED
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "Gave up after 3 attempts" in run.error
    assert "host:2" in run.error
    run = training_resume(run=run)
    assert (run.status, run.attempts) == (TrainingRun.Status.QUEUED, 0)


def test_cancel_flags_a_live_run_and_ends_a_dead_one(run, settings):
    settings.IMAGINEER_JOB_STALE_SECONDS = 60
    training_claim(run_id=run.pk, task_id=run.task_id)
    run = training_cancel(run=run)
    assert (run.status, run.cancel_requested) == (TrainingRun.Status.CANCELLING, True)
    _age(run, 120)
    run = training_cancel(run=run)
    assert run.status == TrainingRun.Status.CANCELLED


def test_training_runs_are_a_registered_kind_whose_lost_messages_can_be_sent_again(django_capture_on_commit_callbacks):
    queued, finished = TrainingRunFactory(), TrainingRunFactory(status=TrainingRun.Status.COMPLETED)
    kind = next(kind for kind in jobs.kinds() if kind.model is TrainingRun)
    with django_capture_on_commit_callbacks() as callbacks:
        kind.resend([queued.pk, finished.pk])
    queued.refresh_from_db()
    assert len(callbacks) == 1 and queued.task_id
