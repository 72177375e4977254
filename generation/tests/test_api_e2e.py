"""A whole run driven through the API alone, with a real gpu worker and the tiny model."""

from __future__ import annotations

import hashlib

import pytest

from imagineer.testing import wait_for
from imagineer.tests.factories import BatchTemplateFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_run_and_single_job_end_to_end_through_the_api(celery_worker, api_as):
    client = api_as("creator")
    template = BatchTemplateFactory(width=64, height=64, steps=2)
    celery_worker("gpu")

    started = client.post(
        f"/api/batch-templates/{template.pk}/generate",
        {"theme": "art deco", "album_name": "API deck", "overrides": {"seed": 7}},
        format="json",
    )
    assert started.status_code == 202, started.content
    run_url = started["Location"]

    seen_statuses = set()

    def finished():
        body = client.get(run_url).json()
        seen_statuses.add(body["progress"]["status"])
        return body if body["progress"]["status"] in {"completed", "completed_with_errors", "failed"} else None

    run = wait_for(finished, timeout=180, interval=0.5, message="the run to finish")
    progress = run["progress"]
    assert progress["status"] == "completed", progress
    assert (progress["total"], progress["completed"], progress["failed"]) == (3, 3, 0)
    assert [item["row_index"] for item in progress["items"]] == [0, 1, 2]
    assert progress["eta_seconds"] == 0

    album = client.get(run["album_url"]).json()
    assert album["name"] == "API deck" and album["source_type"] == "batch_generation"
    assert album["images"]["count"] == 3
    image_ids = [image["id"] for image in album["images"]["results"]]
    assert image_ids == [item["image_id"] for item in progress["items"]]
    for image in album["images"]["results"]:
        response = client.get(image["file_url"])
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        data = _body(response)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert hashlib.sha256(data).hexdigest() == image["sha256"]
        assert client.get(image["thumbnail_url"]).status_code == 200
    legacy = client.get("/api/batches").json()
    assert [batch["album_id"] for batch in legacy["batches"]] == [album["id"]]

    queued = client.post(
        "/api/generate", {"prompt": "a brass owl", "width": 64, "height": 64, "steps": 2}, format="json"
    )
    assert queued.status_code == 202
    job = wait_for(
        lambda: (body := client.get(queued["Location"]).json())["status"] in {"succeeded", "failed"} and body,
        timeout=120,
        interval=0.5,
        message="the single job to finish",
    )
    assert job["status"] == "succeeded", job
    assert _body(client.get(job["file_url"]))[:8] == b"\x89PNG\r\n\x1a\n"
