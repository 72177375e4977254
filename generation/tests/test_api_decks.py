"""/api/albums/<id>/slots..., try first and complete over the API: shapes, permissions, bad input, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generation.models import DeckSlot, GenerationJob
from generation.tests.decks_support import deck_build
from imagineer.tests.factories import BatchTemplateFactory

pytestmark = pytest.mark.django_db


def _take(album, index: int, number: int = 0):
    return GenerationJob.objects.filter(slot__album=album, slot__index=index).order_by("id")[number].result_image


def test_slots_list_takes_and_picks_in_constant_queries(api_as):
    client = api_as("viewer")
    small, large = deck_build(slots=12, takes=3), deck_build(slots=54, takes=3)
    with CaptureQueriesContext(connection) as few:
        body = client.get(f"/api/albums/{small.pk}/slots").json()
    with CaptureQueriesContext(connection) as many:
        client.get(f"/api/albums/{large.pk}/slots")
    assert len(few) == len(many)
    assert [slot["index"] for slot in body] == list(range(12))
    first = body[0]
    assert first["title"] == "Aries 1" and len(first["takes"]) == 3 and first["picked"] is False
    assert first["pick_id"] == first["takes"][0]["image_id"]
    assert first["takes"][0]["image_url"].endswith(f"/api/images/{first['pick_id']}/file")
    one = client.get(f"/api/albums/{small.pk}/slots/2").json()
    assert one["index"] == 2 and len(one["takes"]) == 3
    assert client.get(f"/api/albums/{small.pk}/slots/99").status_code == 404


def test_owner_picks_more_takes_and_varies(api_as):
    client = api_as("creator")
    album = deck_build(slots=3, takes=2, owner=client.user)
    second = _take(album, 1, 1)
    picked = client.post(f"/api/albums/{album.pk}/slots/1/pick", {"image": second.pk}, format="json")
    assert picked.status_code == 200 and picked.json()["pick_id"] == second.pk and picked.json()["picked"]
    reset = client.post(f"/api/albums/{album.pk}/slots/1/pick", {"image": None}, format="json").json()
    assert reset["picked"] is False and reset["pick_id"] == _take(album, 1).pk

    more = client.post(f"/api/albums/{album.pk}/slots/0/takes", {"count": 2, "prompt_edit": "a ram"}, format="json")
    assert more.status_code == 202 and len(more.json()) == 2 and more.json()[0]["status"] == "queued"
    assert DeckSlot.objects.get(album=album, index=0).prompt_edit == "a ram"
    bulk = client.post(f"/api/albums/{album.pk}/takes", {"slots": [1, 2], "count": 1}, format="json")
    assert bulk.status_code == 202 and len(bulk.json()) == 2
    every = client.post(f"/api/albums/{album.pk}/takes", {"all": True}, format="json")
    assert every.status_code == 202 and len(every.json()) == 3

    vary = client.post(
        f"/api/albums/{album.pk}/slots/1/vary", {"image": second.pk, "strength": 0.5, "count": 2}, format="json"
    )
    assert vary.status_code == 202
    assert [take["strength"] for take in vary.json()] == [0.5, 0.5]
    assert vary.json()[0]["init_image"] == second.pk


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("slots/0/takes", {"count": 0}, "count"),
        ("slots/0/takes", {"count": 17}, "count"),
        ("takes", {"count": 1}, "slots"),
        ("takes", {"slots": [7]}, "slots"),
        ("slots/1/vary", {"image": "TAKE0", "strength": 0.5}, "image"),
        ("slots/0/vary", {"image": "TAKE0", "strength": 0}, "strength"),
        ("slots/0/vary", {"image": "TAKE0", "strength": 1.01}, "strength"),
        ("slots/0/vary", {"image": 999999, "strength": 0.5}, "image"),
        ("slots/0/vary", {"image": "TAKE0", "strength": 0.5, "count": 20}, "count"),
        ("slots/1/pick", {"image": "TAKE0"}, "image"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(api_as, path, payload, field):
    client = api_as("creator")
    album = deck_build(slots=2, takes=1, owner=client.user)
    payload = {key: _take(album, 0).pk if value == "TAKE0" else value for key, value in payload.items()}
    before = GenerationJob.objects.count()
    response = client.post(f"/api/albums/{album.pk}/{path}", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert GenerationJob.objects.count() == before
    assert DeckSlot.objects.filter(album=album, pick__isnull=False).count() == 0


def test_viewers_and_other_creators_are_refused_and_anonymous_must_sign_in(api_as):
    owner = api_as("creator")
    album = deck_build(slots=1, takes=1, owner=owner.user)
    take = _take(album, 0)
    for client in (api_as("viewer"), api_as("creator")):
        for path, payload in (
            ("slots/0/pick", {"image": take.pk}),
            ("slots/0/takes", {"count": 1}),
            ("takes", {"all": True}),
            ("slots/0/vary", {"image": take.pk, "strength": 0.5}),
        ):
            assert client.post(f"/api/albums/{album.pk}/{path}", payload, format="json").status_code == 403
    assert api_as(None).get(f"/api/albums/{album.pk}/slots").status_code in (401, 403)
    curator = api_as("curator")
    assert curator.post(f"/api/albums/{album.pk}/slots/0/pick", {"image": take.pk}, format="json").status_code == 200


def test_try_first_and_complete_over_the_api(api_as):
    client = api_as("creator")
    template = BatchTemplateFactory()
    started = client.post(f"/api/batch-templates/{template.pk}/generate", {"theme": "ink", "first": 1}, format="json")
    assert started.status_code == 202, started.content
    run_id = started.json()["id"]
    assert started.json()["total_items"] == 1
    slots = client.get(f"/api/albums/{started.json()['album']}/slots").json()
    assert [slot["title"] for slot in slots] == ["Aries", "Taurus", "Gemini"]
    done = client.post(f"/api/batch-templates/{template.pk}/runs/{run_id}/complete")
    assert done.status_code == 202 and done.json()["total_items"] == 3
    again = client.post(f"/api/batch-templates/{template.pk}/runs/{run_id}/complete")
    assert again.status_code == 400
    bad = client.post(f"/api/batch-templates/{template.pk}/generate", {"theme": "x", "rows": [9]}, format="json")
    assert bad.status_code == 400 and "rows" in bad.json()["error"]["fields"]
    other = api_as("creator")
    assert other.post(f"/api/batch-templates/{template.pk}/runs/{run_id}/complete").status_code == 403


def test_the_schema_documents_the_deck_endpoints(api_as):
    schema = api_as("viewer").get("/api/schema", {"format": "json"}).json()
    for path in (
        "/api/albums/{album_pk}/slots",
        "/api/albums/{album_pk}/slots/{index}/vary",
        "/api/albums/{album_pk}/slots/{index}/pick",
        "/api/albums/{album_pk}/takes",
        "/api/batch-templates/{template_pk}/runs/{id}/complete",
    ):
        assert path in schema["paths"], path


def test_the_album_api_gives_a_decks_picks_in_slot_order_or_every_take(api_as):
    client = api_as("creator")
    album = deck_build(slots=3, takes=2, owner=client.user)
    second = _take(album, 0, 1)
    client.post(f"/api/albums/{album.pk}/slots/0/pick", {"image": second.pk}, format="json")
    picks = client.get(f"/api/albums/{album.pk}").json()["images"]
    assert [image["id"] for image in picks["results"]] == [second.pk, _take(album, 1).pk, _take(album, 2).pk]
    assert [image["position"] for image in picks["results"]] == [1, 2, 3]
    assert client.get(f"/api/albums/{album.pk}", {"takes": "all"}).json()["images"]["count"] == 6


def test_a_decks_dataset_is_its_picks():
    from labeling.models import Label
    from training.services.datasets import dataset_collect

    album = deck_build(slots=3, takes=2)
    for image in album.images.all():
        Label.objects.create(image=image, label_type=Label.LabelType.CAPTION, text="a card")
    items = dataset_collect(album=album, caption_source="auto")
    assert [item.image_id for item in items] == [_take(album, index).pk for index in range(3)]


def test_a_cancelled_vary_leaves_no_take_on_the_card(api_as):
    from generation.services.jobs import job_cancel

    client = api_as("creator")
    album = deck_build(slots=1, takes=1, owner=client.user)
    vary = client.post(
        f"/api/albums/{album.pk}/slots/0/vary", {"image": _take(album, 0).pk, "strength": 0.5}, format="json"
    )
    job = GenerationJob.objects.get(pk=vary.json()[0]["job_id"])
    assert len(client.get(f"/api/albums/{album.pk}/slots/0").json()["takes"]) == 2
    job_cancel(job=job)
    takes = client.get(f"/api/albums/{album.pk}/slots/0").json()["takes"]
    assert [take["job_id"] for take in takes] == [GenerationJob.objects.get(slot__album=album, strength=None).pk]
    assert client.get(f"/albums/{album.pk}/").content.decode().count("data-take>") == 1
