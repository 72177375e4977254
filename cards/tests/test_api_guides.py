"""/api/cards/guides/<template>: a template's layout guide on the API (read by everyone signed
in, set by the template's owner or a curator), layout image uploads, and the preview of one row."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from albums.services.files import media_path
from cards.models import LayoutGuide, LayoutGuideImage
from cards.tests.guides_support import ROWS, bomb_png, png
from imagineer.tests.factories import BatchTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(api_as):
    return api_as("creator")


@pytest.fixture
def template(owner_client):
    return BatchTemplateFactory.create(
        created_by=owner_client.user,
        columns=["value", "suit", "layout"],
        csv_data=ROWS,
        prompt_template="{value} of {suit}",
        width=64,
        height=96,
    )


def preview(client, template, index: int) -> PILImage.Image:
    response = client.get(f"/api/cards/guides/{template.pk}/preview.png?index={index}")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    return PILImage.open(io.BytesIO(response.content))


def test_no_guide_reads_as_none_and_the_owner_sets_playing_cards(owner_client, api_as, template):
    none = api_as("viewer").get(f"/api/cards/guides/{template.pk}").json()
    assert none["kind"] == "none" and none["updated_at"] is None  # the schema says nullable (schemathesis)
    response = owner_client.put(
        f"/api/cards/guides/{template.pk}",
        {"kind": "playing_cards", "rank_column": "value", "suit_column": "suit", "mode": "img2img", "strength": 0.5},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["kind"], body["strength"], body["template"]) == ("playing_cards", 0.5, template.pk)
    assert body["preview_url"].endswith(f"/api/cards/guides/{template.pk}/preview.png")
    # A viewer reads it and previews a row at the generation size; the Ace and the Seven differ.
    viewer = api_as("viewer")
    ace, seven = preview(viewer, template, 1), preview(viewer, template, 2)
    assert ace.size == seven.size == (64, 96)
    assert ace.tobytes() != seven.tobytes()
    bad = viewer.get(f"/api/cards/guides/{template.pk}/preview.png?index=3")
    assert bad.status_code == 400 and "index" in bad.json()["error"]["fields"]
    # Back to none: the guide is gone.
    assert (
        owner_client.put(f"/api/cards/guides/{template.pk}", {"kind": "none"}, format="json").json()["kind"] == "none"
    )
    assert not LayoutGuide.objects.filter(template=template).exists()
    assert viewer.get(f"/api/cards/guides/{template.pk}/preview.png").status_code == 404


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "playing_cards", "rank_column": "rank"}, "rank_column"),
        ({"kind": "column", "image_column": "picture"}, "image_column"),
        ({"kind": "playing_cards", "rank_column": "layout"}, "rank_column"),  # "big" is no rank
        ({"kind": "image", "strength": 1.5}, "strength"),
        ({"kind": "image", "strength": 0.0}, "strength"),
        ({"kind": "image", "mode": "controlnet", "controlnet_scale": 2.5}, "controlnet_scale"),
        ({"kind": "image", "mode": "controlnet", "control_start": 0.8, "control_end": 0.2}, "control_end"),
        ({"kind": "sketch"}, "kind"),
        ({"kind": "image", "mode": "inpaint"}, "mode"),
    ],
)
def test_bad_guide_settings_are_refused_naming_the_field(owner_client, template, data, field):
    response = owner_client.put(f"/api/cards/guides/{template.pk}", data, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not LayoutGuide.objects.filter(template=template).exists()


def test_a_column_names_an_uploaded_image_per_row(owner_client, template, django_capture_on_commit_callbacks):
    url = f"/api/cards/guides/{template.pk}"
    assert owner_client.put(url, {"kind": "column", "image_column": "layout"}, format="json").status_code == 200
    for name, colour in (("big", "red"), ("small", "blue")):
        response = owner_client.post(f"{url}/images", {"name": name, "file": io.BytesIO(png(colour=colour))})
        assert response.status_code == 201, response.content
        assert response.json() == {**response.json(), "name": name, "width": 32, "height": 48}
    assert preview(owner_client, template, 1).getpixel((32, 48)) == (255, 0, 0)
    assert preview(owner_client, template, 2).getpixel((32, 48)) == (0, 0, 255)
    # Saved again, the guide now checks that every row's image exists.
    template.csv_data = [*ROWS, {"value": "2", "suit": "Clubs", "layout": "tiny"}]
    template.save(update_fields=["csv_data"])
    response = owner_client.put(url, {"kind": "column", "image_column": "layout"}, format="json")
    assert response.status_code == 400 and "tiny" in response.json()["error"]["fields"]["image_column"][0]
    # No guide again: the images and their files go too.
    files = [media_path(record.file.name) for record in LayoutGuideImage.objects.all()]
    assert len(files) == 2 and all(path.exists() for path in files)
    with django_capture_on_commit_callbacks(execute=True):
        assert owner_client.put(url, {"kind": "none"}, format="json").status_code == 200
    assert not LayoutGuideImage.objects.exists() and not any(path.exists() for path in files)


def test_one_image_for_every_row_and_bad_uploads_refused(owner_client, template, settings):
    url = f"/api/cards/guides/{template.pk}"
    # Uploads need a guide that takes images.
    refused = owner_client.post(f"{url}/images", {"name": "all", "file": io.BytesIO(png())})
    assert refused.status_code == 400 and "kind" in refused.json()["error"]["fields"]
    owner_client.put(url, {"kind": "image", "mode": "controlnet", "controlnet_scale": 1.2}, format="json")
    not_an_image = owner_client.post(f"{url}/images", {"name": "all", "file": io.BytesIO(b"not an image at all")})
    assert not_an_image.status_code == 400 and "not an image" in not_an_image.json()["error"]["fields"]["file"][0]
    settings.IMAGINEER_SCRAPE_MAX_PIXELS = 1_000_000  # the albums' upload limit applies here too
    bomb = owner_client.post(f"{url}/images", {"name": "all", "file": io.BytesIO(bomb_png(20_000, 20_000))})
    assert bomb.status_code == 400 and "too large" in bomb.json()["error"]["fields"]["file"][0]
    unnamed = owner_client.post(f"{url}/images", {"name": "", "file": io.BytesIO(png())})
    assert unnamed.status_code == 400 and "name" in unnamed.json()["error"]["fields"]
    assert not LayoutGuideImage.objects.exists()
    assert (
        owner_client.post(f"{url}/images", {"name": "all", "file": io.BytesIO(png(colour="lime"))}).status_code == 201
    )
    assert preview(owner_client, template, 2).getpixel((10, 10)) == (0, 255, 0)
    body = owner_client.get(url).json()
    assert [image["name"] for image in body["images"]] == ["all"] and body["controlnet_scale"] == 1.2


def test_only_the_templates_owner_or_a_curator_changes_its_guide(owner_client, api_as, template):
    url = f"/api/cards/guides/{template.pk}"
    data = {"kind": "playing_cards", "rank_column": "value", "suit_column": "suit"}
    for role in ("viewer", "creator"):
        assert api_as(role).put(url, data, format="json").status_code == 403
        assert api_as(role).post(f"{url}/images", {"name": "x", "file": io.BytesIO(png())}).status_code == 403
    assert api_as(None).get(url).status_code == 401
    assert api_as("curator").put(url, data, format="json").status_code == 200
    assert api_as("viewer").get("/api/cards/guides/999999").status_code == 404


def test_guide_routes_are_in_the_openapi_schema(api_as):
    schema = api_as("viewer").get("/api/schema", {"format": "json"}).json()
    paths = schema["paths"]
    assert {"get", "put"} <= set(paths["/api/cards/guides/{template_pk}"])
    assert "post" in paths["/api/cards/guides/{template_pk}/images"]
    assert "get" in paths["/api/cards/guides/{template_pk}/preview.png"]
