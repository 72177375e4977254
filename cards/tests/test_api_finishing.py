"""/api/cards/...: designs with a live preview, finishing jobs (start, progress, cancel), downloads.

The job itself runs through ``cards.worker.finishing_run`` in this process (the worker tests in
test_finishing_jobs.py run it in a real Celery worker); everything else is the real request path.
"""

from __future__ import annotations

import io
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image as PILImage

from cards.models import FinishingJob
from cards.services.designs import design_create
from cards.worker import finishing_run
from generation.tests.decks_support import deck_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def design(zodiac_template):
    return design_create(template=zodiac_template, name="Plain", title_template="{sign}")


def test_designs_list_and_preview_a_chosen_card(api_as, design):
    client = api_as("viewer")
    body = client.get(f"/api/cards/designs?template={design.template_id}").json()
    assert [item["name"] for item in body["results"]] == ["Plain"]
    assert body["results"][0]["preview_url"].endswith(f"/api/cards/designs/{design.pk}/preview.png")
    response = client.get(f"/api/cards/designs/{design.pk}/preview.png?index=5")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    preview = PILImage.open(
        io.BytesIO(b"".join(response.streaming_content) if response.streaming else response.content)
    )
    assert preview.height == 420 and preview.mode == "RGBA"
    # Rounded corners: the corner pixel is transparent, the centre is not.
    assert preview.getpixel((0, 0))[3] == 0 and preview.getpixel((preview.width // 2, 210))[3] == 255
    bad = client.get(f"/api/cards/designs/{design.pk}/preview.png?index=13")
    assert bad.status_code == 400 and "index" in bad.json()["error"]["fields"]
    assert client.get(f"/api/cards/designs/{design.pk}/preview.png?index=x").status_code == 400
    assert api_as(None).get(f"/api/cards/designs/{design.pk}/preview.png").status_code == 401


def test_preview_uses_the_decks_pick(api_as, design):
    client = api_as("creator")
    album = deck_build(slots=3, takes=1, owner=client.user, titles=["Aries", "Taurus", "Gemini"])
    with_pick = client.get(f"/api/cards/designs/{design.pk}/preview.png?index=2&album={album.pk}").content
    without = client.get(f"/api/cards/designs/{design.pk}/preview.png?index=2").content
    assert with_pick != without
    assert client.get(f"/api/cards/designs/{design.pk}/preview.png?album=999999").status_code == 400


def test_owner_finishes_a_deck_then_downloads_each_export(api_as, design):
    client = api_as("creator")
    album = deck_build(slots=3, takes=1, owner=client.user, titles=["Aries", "Taurus", "Gemini"])
    formats = ["zip", "drivethru", "pnp-a4", "tts"]
    response = client.post(
        "/api/cards/finishing", {"album": album.pk, "design": design.pk, "formats": formats}, format="json"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert response["Location"].endswith(f"/api/cards/finishing/{body['id']}")
    assert body["status"] == "queued" and body["formats"] == formats and body["files"] == {}

    job = FinishingJob.objects.get(pk=body["id"])
    finishing_run(job_id=job.pk, task_id=job.task_id)
    body = client.get(f"/api/cards/finishing/{job.pk}").json()
    assert body["status"] == "succeeded" and body["attempt_label"] == "attempt 1 of 3"
    assert sorted(body["files"]) == sorted(formats) and body["missing"] == []
    for name, url in body["files"].items():
        download = client.get(url)
        assert download.status_code == 200, name
        assert download["Content-Disposition"].startswith("attachment")
        data = b"".join(download.streaming_content)
        if name == "zip":
            names = sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
            assert names == ["001-aries.png", "002-taurus.png", "003-gemini.png", "back.png"]
        elif name == "tts":
            assert zipfile.ZipFile(io.BytesIO(data)).namelist()
        else:
            assert data.startswith(b"%PDF")
    assert client.get(f"/api/cards/finishing/{job.pk}/files/mpc").status_code == 404
    # A viewer sees the job and downloads; an outsider to the album cannot finish it.
    viewer = api_as("viewer")
    assert viewer.get(f"/api/cards/finishing/{job.pk}/files/zip").status_code == 200
    other = api_as("creator")
    refused = other.post("/api/cards/finishing", {"album": album.pk, "design": design.pk}, format="json")
    assert refused.status_code == 403
    assert viewer.post("/api/cards/finishing", {"album": album.pk, "design": design.pk}).status_code == 403
    assert api_as(None).get("/api/cards/finishing").status_code == 401


def test_bad_finishing_requests_name_the_field(api_as, design):
    client = api_as("creator")
    album = deck_build(slots=2, takes=1, owner=client.user)
    cases = [
        ({"album": album.pk, "design": design.pk, "formats": ["gif"]}, "formats"),
        ({"album": album.pk, "design": 999999}, "design"),
        ({"album": 999999, "design": design.pk}, "album"),
        ({"album": album.pk, "design": design.pk, "hires": True, "hires_scale": 3}, "hires_scale"),
        ({"album": album.pk, "design": design.pk, "hires": True, "hires_denoise": 0}, "hires_denoise"),
        ({"design": design.pk}, "album"),
    ]
    for data, field in cases:
        response = client.post("/api/cards/finishing", data, format="json")
        assert response.status_code == 400, (data, response.content)
        named = {key.split(".")[0] for key in response.json()["error"]["fields"]}
        assert field in named, (data, response.json())
    assert not FinishingJob.objects.exists()


def test_cancel_and_list_in_constant_queries(api_as, design):
    client = api_as("creator")
    album = deck_build(slots=2, takes=1, owner=client.user)
    first = client.post("/api/cards/finishing", {"album": album.pk, "design": design.pk}, format="json").json()
    assert api_as("creator").post(f"/api/cards/finishing/{first['id']}/cancel").status_code == 403
    cancelled = client.post(f"/api/cards/finishing/{first['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/cards/finishing/{first['id']}/cancel")
    assert again.status_code == 400
    with CaptureQueriesContext(connection) as one:
        client.get(f"/api/cards/finishing?album={album.pk}")
    for _ in range(4):
        client.post("/api/cards/finishing", {"album": album.pk, "design": design.pk}, format="json")
    with CaptureQueriesContext(connection) as five:
        body = client.get(f"/api/cards/finishing?album={album.pk}").json()
    assert body["count"] == 5 and len(one) == len(five)


def test_designs_are_made_changed_and_copied_by_the_templates_owner(api_as, zodiac_template):
    client = api_as("creator")
    zodiac_template.created_by = client.user
    zodiac_template.save(update_fields=["created_by"])
    made = client.post(
        "/api/cards/designs",
        {"template": zodiac_template.pk, "name": "Gold", "title_template": "{sign}", "dpi": 600},
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["name"] == "Gold" and body["dpi"] == 600 and body["title_template"] == "{sign}"
    pk = body["id"]
    changed = client.patch(f"/api/cards/designs/{pk}", {"bleed_mm": "2.5"}, format="json")
    assert changed.status_code == 200 and changed.json()["bleed_mm"] == "2.50"
    copied = client.post(f"/api/cards/designs/{pk}/copy", {}, format="json")
    assert copied.status_code == 201 and copied.json()["name"] == "Gold (copy)"
    assert client.get(f"/api/cards/designs/{pk}").json()["dpi"] == 600

    # Bad input: 400 naming the field, nothing written.
    for data, field in [
        ({"bleed_mm": 11}, "bleed_mm"),
        ({"dpi": "many"}, "dpi"),
        ({"title_template": "{nope}"}, "title_template"),
        ({"art_x_mm": 5}, "art_y_mm"),
        ({"back_prompt": "x" * 1001}, "back_prompt"),
    ]:
        response = client.patch(f"/api/cards/designs/{pk}", data, format="json")
        assert response.status_code == 400, (data, response.json())
        assert field in response.json()["error"]["fields"], (data, response.json())
    assert client.get(f"/api/cards/designs/{pk}").json()["bleed_mm"] == "2.50"
    missing = client.post("/api/cards/designs", {"template": 999999, "name": "X"}, format="json")
    assert missing.status_code == 400 and "template" in missing.json()["error"]["fields"]

    # Someone else's template: refused.
    other = api_as("creator")
    assert other.patch(f"/api/cards/designs/{pk}", {"dpi": 300}, format="json").status_code == 403
    refused = other.post("/api/cards/designs", {"template": zodiac_template.pk, "name": "Mine"}, format="json")
    assert refused.status_code == 403
    assert api_as("viewer").patch(f"/api/cards/designs/{pk}", {"dpi": 300}, format="json").status_code == 403


def test_changing_a_design_finishes_its_decks_again(api_as, design):
    client = api_as("superuser")
    album = deck_build(slots=2, takes=1, titles=["Aries", "Taurus"])
    first = FinishingJob.objects.get(
        pk=client.post("/api/cards/finishing", {"album": album.pk, "design": design.pk}, format="json").json()["id"]
    )
    finishing_run(job_id=first.pk, task_id=first.task_id)
    # Nothing that shows on a card changed: no new job.
    assert client.patch(f"/api/cards/designs/{design.pk}", {"name": "Plain 2"}, format="json").status_code == 200
    assert FinishingJob.objects.count() == 1
    assert client.patch(f"/api/cards/designs/{design.pk}", {"frame_width_mm": "2"}, format="json").status_code == 200
    again = FinishingJob.objects.exclude(pk=first.pk).get()
    assert again.album == album and again.status == FinishingJob.Status.QUEUED
    finishing_run(job_id=again.pk, task_id=again.task_id)
    again.refresh_from_db()
    assert again.result["rendered"] == 3
    # While one is queued, another change does not queue a second.
    client.patch(f"/api/cards/designs/{design.pk}", {"frame_width_mm": "3"}, format="json")
    client.patch(f"/api/cards/designs/{design.pk}", {"frame_width_mm": "4"}, format="json")
    assert FinishingJob.objects.filter(status=FinishingJob.Status.QUEUED).count() == 1
