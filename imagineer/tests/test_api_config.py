"""/api/config: read by signed-in users, changed by superusers only, key by key."""

from __future__ import annotations

import pytest

from imagineer.config import config_get
from imagineer.models import Config

pytestmark = pytest.mark.django_db


def test_signed_in_users_read_the_config(api_as):
    body = api_as("viewer").get("/api/config").json()
    assert body["generation"]["width"] == 512
    assert body["hardware"]["device"] == "auto"
    assert set(body["model"]) == {"name", "is_noise_model"}
    assert "output" not in body


def test_anonymous_and_non_admins_cannot_change_it(api_as):
    assert api_as(None).get("/api/config").status_code == 401
    for role in ("viewer", "creator", "curator"):
        response = api_as(role).patch("/api/config", {"generation": {"steps": 30}}, format="json")
        assert response.status_code == 403, role
        assert response.json()["error"]["message"].startswith("Only an administrator")
    assert config_get()["generation"]["steps"] == 25


def test_superuser_patches_some_keys(api_as):
    client = api_as("superuser")
    response = client.patch(
        "/api/config", {"generation": {"steps": 30, "guidance_scale": 7}, "hardware": {"device": "cpu"}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["generation"]["steps"] == 30
    config = Config.objects.get()
    assert (config.steps, config.guidance_scale, config.device) == (30, 7.0, "cpu")
    assert config.updated_by == client.user


def test_put_needs_every_key_and_accepts_a_get_round_trip(api_as):
    client = api_as("superuser")
    partial = client.put("/api/config", {"generation": {"steps": 30}}, format="json")
    assert partial.status_code == 400
    assert "generation.width" in partial.json()["error"]["fields"]
    whole = client.get("/api/config").json()
    whole["generation"]["height"] = 720
    response = client.put("/api/config", whole, format="json")
    assert response.status_code == 200, response.content
    assert config_get()["generation"]["height"] == 720


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"generation": {"width": 500}}, "generation.width"),
        ({"generation": {"steps": -1}}, "generation.steps"),
        ({"generation": {"steps": "many"}}, "generation.steps"),
        ({"generation": {"guidance_scale": True}}, "generation.guidance_scale"),
        ({"generation": {"negative_prompt": "x" * 2001}}, "generation.negative_prompt"),
        ({"hardware": {"device": "tpu"}}, "hardware.device"),
        ({"hardware": {"mixed_precision": "yes"}}, "hardware.mixed_precision"),
        ({"generation": {"colour": 3}}, "generation.colour"),
        ({"model": {"default": "evil/model"}}, "model"),
        ({"output": {"directory": "/etc"}}, "output"),
        ({"secrets": 1}, "secrets"),
    ],
)
def test_each_key_is_validated_and_nothing_is_half_written(api_as, changes, field):
    client = api_as("superuser")
    changes = {**changes, "hardware": {**changes.get("hardware", {}), "enable_xformers": True}}
    response = client.patch("/api/config", changes, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"]
    assert error["code"] == "invalid"
    assert config_get()["hardware"]["enable_xformers"] is False


def test_bad_json_and_non_objects_are_400s(api_as):
    client = api_as("superuser")
    response = client.generic("PATCH", "/api/config", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert client.patch("/api/config", [1, 2], format="json").status_code == 400
