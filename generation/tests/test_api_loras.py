"""/api/loras: list, upload, detail, delete when unused."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation.models import Lora
from generation.services.loras import lora_path
from generation.tests.api_helpers import SD15_TENSORS, SDXL_TENSORS, safetensors_bytes
from imagineer.tests.factories import BatchTemplateLoraFactory, LoraFactory

pytestmark = pytest.mark.django_db


def _upload(client, name: str = "card_fronts.safetensors", tensors=SD15_TENSORS, **extra):
    data = {"file": SimpleUploadedFile(name, safetensors_bytes(tensors)), **extra}
    return client.post("/api/loras", data, format="multipart")


def test_upload_detects_the_base_and_answers_201(api_as):
    client = api_as("creator")
    response = _upload(client, name="Card_Fronts-000008.safetensors")
    assert response.status_code == 201, response.content
    body = response.json()
    lora = Lora.objects.get(pk=body["id"])
    assert response["Location"].endswith(f"/api/loras/{lora.pk}")
    assert (body["base"], body["rank"], body["in_use"]) == ("sd15", 4, False)
    assert lora.created_by == client.user
    assert lora_path(lora).is_file()
    xl = _upload(client, name="xl.safetensors", tensors=SDXL_TENSORS, name_="x").json()
    assert xl["base"] == "sdxl"


def test_upload_refuses_pickles_non_loras_and_missing_files(api_as):
    client = api_as("creator")
    pickle = client.post("/api/loras", {"file": SimpleUploadedFile("evil.ckpt", b"\x80\x04K\x01.")}, format="multipart")
    assert pickle.status_code == 400
    assert "pickle" in pickle.json()["error"]["fields"]["file"][0]
    junk = client.post("/api/loras", {"file": SimpleUploadedFile("junk.safetensors", b"hello")}, format="multipart")
    assert junk.status_code == 400
    assert client.post("/api/loras", {}, format="multipart").status_code == 400
    assert not Lora.objects.exists()


def test_upload_needs_the_generate_permission(api_as):
    assert _upload(api_as(None)).status_code == 401
    assert _upload(api_as("viewer")).status_code == 403


def test_list_detail_and_filters(api_as):
    client = api_as("viewer")
    used = LoraFactory(name="tarot")
    BatchTemplateLoraFactory(lora=used)
    LoraFactory(name="xl", base=Lora.Base.SDXL)
    body = client.get("/api/loras").json()
    assert [(row["name"], row["in_use"]) for row in body["results"]] == [("tarot", True), ("xl", False)]
    assert [row["name"] for row in client.get("/api/loras", {"base": "sdxl"}).json()["results"]] == ["xl"]
    assert client.get(f"/api/loras/{used.pk}").json()["name"] == "tarot"
    assert client.get("/api/loras/999999").status_code == 404


def test_delete_when_unused_by_owner_or_curator(api_as, django_capture_on_commit_callbacks):
    owner = api_as("creator")
    lora = Lora.objects.get(pk=_upload(owner).json()["id"])
    assert api_as("creator").delete(f"/api/loras/{lora.pk}").status_code == 403
    assert api_as("viewer").delete(f"/api/loras/{lora.pk}").status_code == 403
    path = lora_path(lora)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.delete(f"/api/loras/{lora.pk}")
    assert response.status_code == 204
    assert not Lora.objects.filter(pk=lora.pk).exists()
    assert not path.exists()
    other = LoraFactory()
    assert api_as("curator").delete(f"/api/loras/{other.pk}").status_code == 204
    assert api_as("curator").delete("/api/loras/999999").status_code == 404


def test_a_lora_in_use_cannot_be_deleted(api_as):
    lora = LoraFactory(name="cards")
    BatchTemplateLoraFactory(lora=lora)
    response = api_as("curator").delete(f"/api/loras/{lora.pk}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "in_use"
    assert Lora.objects.filter(pk=lora.pk).exists()


@pytest.mark.parametrize("rows", [3, 30])
def test_lora_queries_are_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    loras = [LoraFactory() for _ in range(rows)]
    with django_assert_num_queries(4):
        assert len(client.get("/api/loras", {"page_size": 50}).json()["results"]) == rows
    # session, user, lora, the user's permissions (2)
    with django_assert_num_queries(5):
        client.get(f"/api/loras/{loras[0].pk}")
