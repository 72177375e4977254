"""/api/labeling/image/<id>, /api/labeling/album/<id>, task status and album jobs."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_results.models import TaskResult

from imagineer.tests.factories import (
    AlbumFactory,
    AlbumImageFactory,
    ImageFactory,
    LabelFactory,
    LabelingJobFactory,
    UserFactory,
)
from labeling.models import LabelingJob

pytestmark = pytest.mark.django_db


def test_label_an_image_answers_202_with_a_status_url(api_as, django_capture_on_commit_callbacks):
    client = api_as("creator")
    image = ImageFactory(created_by=client.user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/api/labeling/image/{image.pk}", {"prompt_type": "sd_training"}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["task_id"]
    assert response["Location"] == body["status_url"]
    assert body["status_url"].endswith(f"/api/labeling/tasks/{body['task_id']}")
    assert len(callbacks) == 1

    pending = client.get(body["status_url"]).json()
    assert pending == {"task_id": body["task_id"], "status": "pending", "result": None, "error": None}
    TaskResult.objects.create(task_id=body["task_id"], status="SUCCESS", result='{"status": "done"}')
    assert client.get(body["status_url"]).json()["result"] == {"status": "done"}


def test_label_an_album_starts_a_job(api_as):
    client = api_as("creator")
    album = AlbumFactory(created_by=client.user)
    AlbumImageFactory(album=album)
    response = client.post(f"/api/labeling/album/{album.pk}", {"force": True}, format="json")
    assert response.status_code == 202, response.content
    job = LabelingJob.objects.get()
    body = response.json()
    assert (body["job_id"], body["task_id"]) == (job.pk, job.task_id)
    assert job.force and job.progress_total == 1 and job.created_by == client.user
    progress = client.get(body["status_url"]).json()
    assert (progress["id"], progress["status"], progress["total"], progress["remaining"]) == (job.pk, "queued", 1, 1)

    again = client.post(f"/api/labeling/album/{album.pk}", {}, format="json")
    assert again.status_code == 400
    assert "already being labelled" in again.json()["error"]["message"]


def test_album_jobs_list_filter_and_cancel(api_as):
    client = api_as("creator")
    album = AlbumFactory(created_by=client.user)
    AlbumImageFactory(album=album)
    job_id = client.post(f"/api/labeling/album/{album.pk}", {}, format="json").json()["job_id"]
    listed = client.get("/api/labeling/jobs", {"album": album.pk}).json()
    assert [row["id"] for row in listed["results"]] == [job_id]
    assert client.get("/api/labeling/jobs", {"status": "weird"}).status_code == 400
    assert api_as("viewer").delete(f"/api/labeling/jobs/{job_id}").status_code == 403
    response = client.delete(f"/api/labeling/jobs/{job_id}")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert client.delete(f"/api/labeling/jobs/{job_id}").status_code == 202  # cancelling twice is harmless
    assert client.get("/api/labeling/jobs/999999").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"prompt_type": "poetry"}, "prompt_type"),
        ({"force": "sometimes"}, "force"),
        ({"backend": "gpt"}, "backend"),
    ],
)
def test_bad_label_requests_are_400s(api_as, payload, field):
    client = api_as("creator")
    image = ImageFactory(created_by=client.user)
    album = AlbumFactory(created_by=client.user)
    for url in (f"/api/labeling/image/{image.pk}", f"/api/labeling/album/{album.pk}"):
        response = client.post(url, payload, format="json")
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]
    assert not LabelingJob.objects.exists()


def test_bad_json_is_a_400(api_as):
    client = api_as("creator")
    image = ImageFactory(created_by=client.user)
    response = client.generic("POST", f"/api/labeling/image/{image.pk}", "[", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_labeling_needs_the_label_permission_and_existing_objects(api_as):
    image = ImageFactory()
    album = AlbumFactory()
    for url in (f"/api/labeling/image/{image.pk}", f"/api/labeling/album/{album.pk}"):
        assert api_as(None).post(url, {}, format="json").status_code == 401
        assert api_as("viewer").post(url, {}, format="json").status_code == 403
    creator = api_as("creator")
    assert creator.post("/api/labeling/image/999999", {}, format="json").status_code == 404
    assert creator.post("/api/labeling/album/999999", {}, format="json").status_code == 404
    assert api_as(None).get("/api/labeling/jobs").status_code == 401


@pytest.mark.parametrize("rows", [3, 30])
def test_labeling_job_queries_are_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    LabelingJobFactory.create_batch(rows)
    job = LabelingJob.objects.first()
    with django_assert_num_queries(4):  # session, user, count, jobs (albums joined)
        assert len(client.get("/api/labeling/jobs", {"page_size": 50}).json()["results"]) == rows
    with django_assert_num_queries(5):  # session, user, job, the user's permissions (2)
        client.get(f"/api/labeling/jobs/{job.pk}")


def test_only_an_images_owner_or_a_curator_may_relabel_it(api_as, client, django_capture_on_commit_callbacks):
    """Issue 12.4: labeling replaces an image's labels and signs them with the labeler's name, so it
    is a write to the image: only its owner (who made it, or the creator of an album holding it)
    or a curator may do it, through the API or the page form, for one image or a whole album."""
    owner = UserFactory(role="creator")
    album = AlbumFactory(created_by=owner)
    image = ImageFactory()
    AlbumImageFactory(album=album, image=image)
    label = LabelFactory(image=image, source="local", prompt_type="default", text="owner's tag", created_by=owner)

    other = api_as("creator")
    client.force_login(other.user)
    with django_capture_on_commit_callbacks() as callbacks:
        refused = [
            other.post(f"/api/labeling/image/{image.pk}", {"force": True}, format="json").status_code,
            other.post(f"/api/labeling/album/{album.pk}", {"force": True}, format="json").status_code,
            client.post(reverse("albums:image-label", args=[image.pk]), {"force": "on"}).status_code,
            client.post(reverse("albums:album-label", args=[album.pk]), {"force": "on"}).status_code,
        ]
    assert refused == [403, 403, 403, 403]
    assert callbacks == [] and not LabelingJob.objects.exists()
    assert list(image.labels.values_list("pk", "text", "created_by")) == [(label.pk, "owner's tag", owner.pk)]

    owner_client = api_as("creator")
    owner_client.force_login(owner)
    assert owner_client.post(f"/api/labeling/image/{image.pk}", {"force": True}, format="json").status_code == 202
    own_image = ImageFactory(created_by=other.user)  # made by them, in no album
    assert other.post(f"/api/labeling/image/{own_image.pk}", {}, format="json").status_code == 202
    curator = api_as("curator")
    assert curator.post(f"/api/labeling/album/{album.pk}", {"force": True}, format="json").status_code == 202
