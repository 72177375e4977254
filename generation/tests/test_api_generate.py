"""POST /api/generate."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob, Lora
from imagineer.config import config_update
from imagineer.tests.factories import AlbumFactory, LoraFactory

pytestmark = pytest.mark.django_db


def test_generate_queues_a_job_with_config_defaults(api_as, django_capture_on_commit_callbacks):
    client = api_as("creator")
    config_update(changes={"generation": {"steps": 12, "width": 256}}, user=None)
    lora = LoraFactory(name="cards", base=Lora.Base.SD15)
    album = AlbumFactory(created_by=client.user)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/generate",
            {"prompt": "a brass owl", "seed": 42, "loras": [{"name": "cards", "weight": "0.6"}], "album": album.pk},
            format="json",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    job = GenerationJob.objects.get(pk=body["id"])
    assert response["Location"] == f"http://testserver/api/jobs/{job.pk}"
    assert body["url"] == response["Location"]
    assert body["status"] == "queued"
    assert (job.prompt, job.seed, job.steps, job.width, job.height) == ("a brass owl", 42, 12, 256, 512)
    assert job.lora_stack[0]["name"] == lora.name and job.lora_stack[0]["weight"] == "0.60"
    assert job.album == album and job.created_by == client.user
    assert len(callbacks) == 1  # the gpu task is sent once the job is committed


def test_generate_into_someone_elses_album_is_refused(api_as):
    album = AlbumFactory(created_by=api_as("creator").user)
    response = api_as("creator").post("/api/generate", {"prompt": "a brass owl", "album": album.pk}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "You can only change albums that you created."
    assert not GenerationJob.objects.exists()
    curator = api_as("curator")
    assert curator.post("/api/generate", {"prompt": "an owl", "album": album.pk}, format="json").status_code == 202


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": "owl", "width": 500}, "width"),
        ({"prompt": "owl", "height": "tall"}, "height"),
        ({"prompt": "owl", "steps": -3}, "steps"),
        ({"prompt": "owl", "steps": 1.5}, "steps"),
        ({"prompt": "owl", "guidance_scale": 99}, "guidance_scale"),
        ({"prompt": "owl", "seed": -1}, "seed"),
        ({"prompt": "owl", "scheduler": "warp"}, "scheduler"),
        ({"prompt": "owl", "loras": [{"name": "nope"}]}, "loras"),
        ({"prompt": "owl", "loras": "cards"}, "loras"),
        ({"prompt": "owl", "album": 999999}, "album"),
        ({"prompt": ["owl"]}, "prompt"),
    ],
)
def test_bad_requests_are_400_with_the_field_named(api_as, payload, field):
    response = api_as("creator").post("/api/generate", payload, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert error["message"]
    assert not GenerationJob.objects.exists()


def test_an_unfit_lora_is_refused(api_as):
    LoraFactory(name="xl-style", base=Lora.Base.SDXL)
    response = api_as("creator").post(
        "/api/generate", {"prompt": "owl", "loras": [{"name": "xl-style"}]}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "SDXL" in error["fields"]["loras"][0]
    assert not GenerationJob.objects.exists()


def test_bad_json_is_a_400(api_as):
    response = api_as("creator").generic("POST", "/api/generate", '{"prompt": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_generate_needs_the_generate_permission(api_as):
    assert api_as(None).post("/api/generate", {"prompt": "owl"}, format="json").status_code == 401
    forbidden = api_as("viewer").post("/api/generate", {"prompt": "owl"}, format="json")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "permission_denied"
    assert not GenerationJob.objects.exists()


def test_session_requests_need_csrf_but_token_requests_do_not(api_as):
    from rest_framework.test import APIClient

    from accounts.services import token_create

    client = api_as("creator")
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(client.user)
    assert strict.post("/api/generate", {"prompt": "owl"}, format="json").status_code == 403
    _, key = token_create(user=client.user, name="script")
    tokened = APIClient(enforce_csrf_checks=True)
    response = tokened.post("/api/generate", {"prompt": "owl"}, format="json", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 202, response.content
