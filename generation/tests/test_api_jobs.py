"""/api/jobs and /api/jobs/<id> (GET; DELETE cancels)."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob
from generation.services.jobs import job_submit

pytestmark = pytest.mark.django_db


def _job(user=None, **fields) -> GenerationJob:
    job = job_submit(prompt=fields.pop("prompt", "a brass owl"), width=64, height=64, steps=2, created_by=user)
    if fields:
        GenerationJob.objects.filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
    return job


def test_list_is_the_queue_and_the_history_filtered_by_status(api_as):
    client = api_as("viewer")
    queued = _job()
    done = _job(status=GenerationJob.Status.SUCCEEDED)
    body = client.get("/api/jobs").json()
    assert [row["id"] for row in body["results"]] == [done.pk, queued.pk]
    only_queued = client.get("/api/jobs", {"status": "queued"}).json()
    assert [row["id"] for row in only_queued["results"]] == [queued.pk]
    assert client.get("/api/jobs", {"status": "sleeping"}).status_code == 400
    assert client.get("/api/jobs", {"ordering": "created_at"}).json()["results"][0]["id"] == queued.pk


def test_detail_and_404(api_as):
    client = api_as("viewer")
    job = _job(seed=7)
    body = client.get(f"/api/jobs/{job.pk}").json()
    assert (body["id"], body["seed"], body["status"], body["image_id"], body["file_url"]) == (
        job.pk,
        7,
        "queued",
        None,
        None,
    )
    assert client.get("/api/jobs/999999").status_code == 404
    assert api_as(None).get(f"/api/jobs/{job.pk}").status_code == 401


def test_owner_cancels_a_queued_job(api_as):
    client = api_as("creator")
    job = _job(client.user)
    response = client.delete(f"/api/jobs/{job.pk}")
    assert response.status_code == 202
    assert response["Location"].endswith(f"/api/jobs/{job.pk}")
    assert response.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED


def test_cancelling_a_finished_job_is_a_400(api_as):
    client = api_as("creator")
    job = _job(client.user, status=GenerationJob.Status.SUCCEEDED)
    response = client.delete(f"/api/jobs/{job.pk}")
    assert response.status_code == 400
    assert "already finished" in response.json()["error"]["message"]


def test_only_the_owner_or_a_curator_may_cancel(api_as):
    owner = api_as("creator")
    job = _job(owner.user)
    assert api_as("viewer").delete(f"/api/jobs/{job.pk}").status_code == 403
    assert api_as("creator").delete(f"/api/jobs/{job.pk}").status_code == 403
    assert api_as(None).delete(f"/api/jobs/{job.pk}").status_code == 401
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.QUEUED
    assert api_as("curator").delete(f"/api/jobs/{job.pk}").status_code == 202
    assert api_as("curator").delete("/api/jobs/999999").status_code == 404


@pytest.mark.parametrize("rows", [3, 30])
def test_job_queries_are_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    jobs = [_job() for _ in range(rows)]
    # session, user, count, jobs
    with django_assert_num_queries(4):
        response = client.get("/api/jobs", {"page_size": 50})
    assert len(response.json()["results"]) == rows
    # session, user, job, the user's permissions (2)
    with django_assert_num_queries(5):
        client.get(f"/api/jobs/{jobs[0].pk}")
