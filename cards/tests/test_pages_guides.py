"""The layout guide page of a template: read by everyone signed in; set, with layout images
uploaded, by its owner or a curator; bad input shown next to its field."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from cards.models import LayoutGuide, LayoutGuideImage
from cards.tests.guides_support import ROWS, bomb_png, png
from imagineer.tests.factories import BatchTemplateFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory.create(role="creator")


@pytest.fixture
def template(owner):
    return BatchTemplateFactory.create(
        created_by=owner,
        columns=["value", "suit", "layout"],
        csv_data=ROWS,
        prompt_template="{value} of {suit}",
        width=64,
        height=96,
    )


def upload(client, template, name: str, data: bytes, filename: str = "guide.png"):
    file = io.BytesIO(data)
    file.name = filename
    return client.post(f"/cards/templates/{template.pk}/guide/images", {"name": name, "file": file})


def test_the_owner_sets_a_playing_card_guide_and_previews_a_row(client, owner, template):
    client.force_login(owner)
    page = client.get(f"/cards/templates/{template.pk}/guide")
    assert page.status_code == 200 and "No guide" in page.content.decode()
    response = client.post(
        f"/cards/templates/{template.pk}/guide",
        {"kind": "playing_cards", "rank_column": "value", "suit_column": "suit", "mode": "img2img", "strength": "0.6"},
    )
    assert response.status_code == 302
    guide = LayoutGuide.objects.get(template=template)
    assert (guide.kind, guide.strength) == ("playing_cards", 0.6)
    page = client.get(f"/cards/templates/{template.pk}/guide?row=2").content.decode()
    assert f"/api/cards/guides/{template.pk}/preview.png?index=2" in page
    image = client.get(f"/api/cards/guides/{template.pk}/preview.png?index=2")
    assert PILImage.open(io.BytesIO(image.content)).size == (64, 96)
    # The template's page links here.
    assert f"/cards/templates/{template.pk}/guide" in client.get(f"/templates/{template.slug}/").content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "playing_cards", "rank_column": "rank", "suit_column": "suit"}, "rank_column"),
        ({"kind": "column", "image_column": "nope"}, "image_column"),
        ({"kind": "image", "strength": "3"}, "strength"),
        ({"kind": "image", "strength": "lots"}, "strength"),
        ({"kind": "image", "controlnet_scale": "-1"}, "controlnet_scale"),
    ],
)
def test_bad_settings_are_shown_next_to_their_field(client, owner, template, data, field):
    client.force_login(owner)
    response = client.post(f"/cards/templates/{template.pk}/guide", data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not LayoutGuide.objects.filter(template=template).exists()


def test_uploads_refuse_undecodable_files_and_bombs(client, owner, template, settings):
    client.force_login(owner)
    client.post(f"/cards/templates/{template.pk}/guide", {"kind": "image", "mode": "img2img", "strength": "0.7"})
    bad = upload(client, template, "all", b"GIF89a broken")
    assert bad.status_code == 400 and 'id="id_image_file_error"' in bad.content.decode()
    settings.IMAGINEER_SCRAPE_MAX_PIXELS = 1_000_000
    bomb = upload(client, template, "all", bomb_png(20_000, 20_000))
    assert bomb.status_code == 400 and "too large" in bomb.content.decode()
    assert not LayoutGuideImage.objects.exists()
    assert upload(client, template, "all", png()).status_code == 302
    assert "all · 32×48" in client.get(f"/cards/templates/{template.pk}/guide").content.decode()
    # Back to none.
    assert client.post(f"/cards/templates/{template.pk}/guide", {"kind": "none"}).status_code == 302
    assert not LayoutGuide.objects.exists()


def test_others_read_but_cannot_change(client, template):
    client.force_login(UserFactory.create(role="creator"))
    page = client.get(f"/cards/templates/{template.pk}/guide").content.decode()
    assert "Only the template's owner or a curator" in page and 'id="guide-upload"' not in page
    assert client.post(f"/cards/templates/{template.pk}/guide", {"kind": "none"}).status_code == 403
    assert upload(client, template, "all", png()).status_code == 403
