"""Album labeling end to end: a real labeling worker (-c 2) runs real containers."""

from __future__ import annotations

import time

import pytest
from celery.result import AsyncResult

from imagineer.testing import wait_for
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, LabelFactory, UserFactory
from labeling import services
from labeling.models import Label, LabelingJob, LabelingJobItem
from labeling.selectors import labeling_job_progress
from labeling.tests.conftest import SECRET_ACCESS, SECRET_REFRESH, marked_image

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_album_labeling_through_a_real_worker(celery_worker, claude_docker_settings, no_leftover_containers):
    celery_worker(
        "labeling",
        concurrency=2,
        extra_env={**claude_docker_settings, "IMAGINEER_LABEL_RETRY_BACKOFF": "1", "IMAGINEER_LABEL_MAX_RETRIES": "5"},
    )
    creator = UserFactory(role="creator")
    album = AlbumFactory()
    # Rate-limited for the first few seconds, then answers: retried with backoff until it does.
    flaky = marked_image(f"ratelimit-until-{int(time.time()) + 3}")
    good, adult, garbage, failing, labelled = (
        marked_image(),
        marked_image("adult"),
        marked_image("garbage"),
        marked_image("fail"),
        marked_image(),
    )
    for position, image in enumerate([good, flaky, adult, garbage, failing, labelled]):
        AlbumImageFactory(album=album, image=image, position=position)
    LabelFactory(image=labelled, source="local", prompt_type="default", label_type="caption", text="done before")

    job = services.album_label_start(album=album, user=creator)
    task_id = services.image_label_enqueue(image=labelled, user=creator, force=True)

    def finished():
        job.refresh_from_db()
        return not job.is_active

    wait_for(finished, timeout=90, message="the labeling job to finish")
    progress = labeling_job_progress(job=job)
    assert (progress["status"], progress["total"], progress["done"], progress["failed"], progress["skipped"]) == (
        "completed_with_errors",
        6,
        3,
        2,
        1,
    )
    errors = {error["image_id"]: error["error"] for error in progress["errors"]}
    assert set(errors) == {garbage.pk, failing.pk}
    assert "no JSON object" in errors[garbage.pk]
    assert "Invalid API key" in errors[failing.pk]
    assert LabelingJobItem.objects.get(job=job, image=flaky).attempts >= 2
    for image in (good, flaky, adult):
        assert Label.objects.filter(image=image, source="claude-docker", label_type="caption").count() == 1
        assert list(Label.objects.filter(image=image, label_type="tag").values_list("text", flat=True)) == [
            "red",
            "square",
            "flat colour",
            "minimal",
        ]
    adult.refresh_from_db()
    assert adult.is_nsfw and adult.nsfw_rating == "ADULT"
    assert job.created_by == creator and job.started_at and job.finished_at

    # The single-image task ran on the same worker, forced over the earlier label.
    outcome = wait_for(lambda: AsyncResult(task_id).ready() and AsyncResult(task_id), timeout=30, message="task")
    assert outcome.result["status"] == "done"
    assert Label.objects.filter(image=labelled, source="claude-docker").exists()
    stored = " ".join(Label.objects.values_list("text", flat=True)) + str(LabelingJob.objects.values_list("errors"))
    assert SECRET_ACCESS not in stored and SECRET_REFRESH not in stored
