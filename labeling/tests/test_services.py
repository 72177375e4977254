"""Storing labels, permissions, validation, job start/cancel and the management command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from imagineer import jobs
from imagineer.errors import ApplicationError
from imagineer.tests.factories import (
    AlbumFactory,
    AlbumImageFactory,
    ImageFactory,
    LabelFactory,
    LabelingJobFactory,
    LabelingJobItemFactory,
    UserFactory,
)
from labeling import services
from labeling.backends import LabelResult, TransientLabelError
from labeling.models import Label, LabelingJob, LabelingJobItem
from labeling.selectors import labeling_job_progress
from labeling.tests.conftest import SECRET_ACCESS, marked_image

pytestmark = pytest.mark.django_db


def result(**overrides) -> LabelResult:
    values = {
        "caption": "a cat",
        "tags": ["cat", "sofa"],
        "nsfw_rating": "SAFE",
        "source": "claude-docker",
        "source_model": "claude-x",
        "prompt_type": "default",
    }
    return LabelResult(**{**values, **overrides})


def test_relabeling_replaces_the_same_sources_labels_only():
    image = ImageFactory()
    LabelFactory(image=image, text="hand-made", source="manual")
    services.labels_store(image=image, result=result(prompt_type="sd_training", caption="cat, sofa", tags=["cat"]))
    services.labels_store(image=image, result=result())
    services.labels_store(
        image=image, result=result(caption="a sleeping cat", tags=["cat", "sleep"], nsfw_rating="ADULT")
    )
    rows = set(Label.objects.filter(image=image).values_list("source", "prompt_type", "label_type", "text"))
    assert rows == {
        ("manual", "", "tag", "hand-made"),
        ("claude-docker", "sd_training", "caption", "cat, sofa"),
        ("claude-docker", "sd_training", "tag", "cat"),
        ("claude-docker", "default", "caption", "a sleeping cat"),
        ("claude-docker", "default", "tag", "cat"),
        ("claude-docker", "default", "tag", "sleep"),
    }
    image.refresh_from_db()
    assert (image.nsfw_rating, image.is_nsfw) == ("ADULT", True)
    services.labels_store(image=image, result=result(nsfw_rating="SUGGESTIVE"))
    image.refresh_from_db()
    assert (image.nsfw_rating, image.is_nsfw) == ("SUGGESTIVE", False)


def test_image_label_through_docker_stores_labels(claude_docker_settings, no_leftover_containers):
    creator = UserFactory(role="creator")
    image = marked_image("adult")
    returned = services.image_label(image=image, user=creator)
    assert returned.nsfw_rating == "ADULT"
    image.refresh_from_db()
    assert image.is_nsfw is True
    caption = Label.objects.get(image=image, label_type="caption")
    assert (caption.source, caption.source_model, caption.created_by) == (
        "claude-docker",
        "claude-sonnet-test",
        creator,
    )
    assert SECRET_ACCESS not in "".join(Label.objects.values_list("text", flat=True))


def test_viewers_may_not_label_and_bad_input_names_the_field(api_as):
    viewer, creator = api_as("viewer"), UserFactory(role="creator")
    image, album = ImageFactory(), AlbumFactory()
    assert viewer.post(f"/api/labeling/image/{image.pk}", {}, format="json").status_code == 403
    assert viewer.post(f"/api/labeling/album/{album.pk}", {}, format="json").status_code == 403
    with pytest.raises(ApplicationError) as caught:
        services.image_label_enqueue(image=image, prompt_type="poem", user=creator)
    assert list(caught.value.fields) == ["prompt_type"]
    with pytest.raises(ApplicationError) as caught:
        services.album_label_start(album=album, backend="gpt", user=creator)
    assert list(caught.value.fields) == ["backend"]
    assert not LabelingJob.objects.exists()


def test_enqueue_refuses_an_image_without_its_file(django_capture_on_commit_callbacks):
    image = ImageFactory(file="outputs/none/missing.png")
    with pytest.raises(ApplicationError, match="missing"), django_capture_on_commit_callbacks() as callbacks:
        services.image_label_enqueue(image=image, user=UserFactory(role="creator"))
    assert callbacks == []


def test_one_active_job_per_album_and_cancel(django_capture_on_commit_callbacks):
    creator = UserFactory(role="creator")
    album = AlbumFactory()
    AlbumImageFactory.create_batch(3, album=album)
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.album_label_start(album=album, prompt_type="sd_training", user=creator)
    assert len(callbacks) == 1  # the album task, sent on commit
    assert (job.status, job.progress_total, job.backend, job.created_by) == ("queued", 3, "local", creator)
    with pytest.raises(ApplicationError, match="already being labelled"):
        services.album_label_start(album=album, user=creator)
    services.labeling_job_fan_out(job_id=job.pk, enqueue=False)
    job = services.labeling_job_cancel(job=job)
    assert (job.status, job.skipped, job.progress_done) == ("cancelled", 3, 3)
    assert set(job.items.values_list("status", flat=True)) == {LabelingJobItem.Status.CANCELLED}
    assert services.labeling_job_item_label(item_id=job.items.first().pk, final_attempt=True) == "cancelled"
    with pytest.raises(ApplicationError, match="already finished"):
        job.status = LabelingJob.Status.COMPLETED
        job.save()
        services.labeling_job_cancel(job=job)
    services.album_label_start(album=album, user=creator)  # a new job once none is active


def test_label_album_command_runs_in_process_with_a_progress_bar(claude_docker_settings, no_leftover_containers):
    album = AlbumFactory(slug="cards")
    good, garbage, done_before = marked_image(), marked_image("garbage"), marked_image()
    for position, image in enumerate([good, garbage, done_before]):
        AlbumImageFactory(album=album, image=image, position=position)
    LabelFactory(image=done_before, source="claude-docker", prompt_type="default", label_type="caption", text="old")
    out, err = StringIO(), StringIO()
    call_command("label_album", "cards", stdout=out, stderr=err)
    job = LabelingJob.objects.get()
    progress = labeling_job_progress(job=job)
    assert {key: progress[key] for key in ("status", "total", "done", "failed", "skipped", "remaining", "percent")} == {
        "status": "completed_with_errors",
        "total": 3,
        "done": 1,
        "failed": 1,
        "skipped": 1,
        "remaining": 0,
        "percent": 100,
    }
    assert progress["errors"][0]["image_id"] == garbage.pk and "no JSON object" in progress["errors"][0]["error"]
    assert "3/3" in err.getvalue()  # tqdm's bar
    assert "completed_with_errors: 1 labelled, 1 failed, 1 skipped of 3" in out.getvalue()
    assert Label.objects.get(image=done_before, label_type="caption").text == "old"

    call_command("label_album", str(album.pk), "--force", "--prompt-type", "sd_training", stdout=out, stderr=err)
    assert LabelingJob.objects.latest("id").done == 2
    with pytest.raises(CommandError, match="No album"):
        call_command("label_album", "no-such-album", stdout=out, stderr=err)


def test_cancel_while_an_image_is_labelled_waits_for_it_then_ends_the_job(settings, django_capture_on_commit_callbacks):
    settings.IMAGINEER_LABELER = "local"
    album = AlbumFactory()
    AlbumImageFactory.create_batch(3, album=album)
    job = services.album_label_start(album=album, user=UserFactory(role="creator"), enqueue=False)
    first, *rest = services.labeling_job_fan_out(job_id=job.pk, enqueue=False)
    # Another worker is labelling the first image (its heartbeat is fresh) when the cancel comes.
    assert jobs.claim_one(LabelingJobItem, first, task_id="t-first", worker="labeller:1")
    with django_capture_on_commit_callbacks():
        job = services.labeling_job_cancel(job=job)
    assert (job.status, job.skipped, job.progress_done) == ("cancelling", 2, 2)
    assert set(LabelingJobItem.objects.filter(pk__in=rest).values_list("status", flat=True)) == {"cancelled"}
    assert services.labeling_job_cancel(job=job).status == "cancelling"  # twice is harmless
    # That image ends; the job is cancelled with it, the label it made counted.
    services._item_finish(
        item=LabelingJobItem.objects.get(pk=first), worker="labeller:1", status=LabelingJobItem.Status.SUCCEEDED
    )
    job.refresh_from_db()
    assert (job.status, job.done, job.skipped, job.progress_done, job.progress_total) == ("cancelled", 1, 2, 3, 3)
    assert job.finished_at is not None


def test_a_transient_failure_queues_the_image_again_and_the_retry_claims_it(monkeypatch):
    album = AlbumFactory()
    AlbumImageFactory(album=album)
    job = services.album_label_start(album=album, user=UserFactory(role="creator"), enqueue=False)
    [item_id] = services.labeling_job_fan_out(job_id=job.pk, enqueue=False)
    answers = iter([TransientLabelError("rate limited"), result(source="local")])

    def label(**kwargs):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(services, "_image_label", label)
    with pytest.raises(TransientLabelError):
        services.labeling_job_item_label(item_id=item_id, final_attempt=False, task_id="t-item")
    item = LabelingJobItem.objects.get(pk=item_id)
    assert (item.status, item.attempts, item.error, item.worker) == ("queued", 1, "rate limited", "")
    assert services.labeling_job_item_label(item_id=item_id, final_attempt=True, task_id="t-item") == "succeeded"
    item.refresh_from_db()
    job.refresh_from_db()
    assert (item.attempts, job.status, job.done) == (2, "completed", 1)


def test_labeling_jobs_and_items_are_registered_kinds(django_capture_on_commit_callbacks):
    registered = {kind.model for kind in jobs.kinds()}
    assert {LabelingJob, LabelingJobItem} <= registered
    queued_job = LabelingJobFactory()
    item = LabelingJobItemFactory(job=LabelingJobFactory(status=LabelingJob.Status.RUNNING))
    with django_capture_on_commit_callbacks() as callbacks:
        next(kind for kind in jobs.kinds() if kind.model is LabelingJob).resend([queued_job.pk, item.job_id])
    assert len(callbacks) == 2  # the queued job's fan-out, the running job's queued item
