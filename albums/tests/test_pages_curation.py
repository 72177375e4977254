"""Album pages for creators: upload into a new or own album, captions and tags by hand, search;
and the site's own 403/404 pages."""

from __future__ import annotations

import io
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image as PILImage

from albums.forms import ImageSearchForm
from albums.models import Album, Image
from albums.search import _text_match_substrings
from generation.models import GenerationJob
from imagineer.tests.factories import (
    AlbumFactory,
    AlbumImageFactory,
    BatchTemplateFactory,
    ImageFactory,
    LabelFactory,
    UserFactory,
)
from labeling.models import Label

pytestmark = pytest.mark.django_db


@pytest.fixture
def creator(client):
    user = UserFactory(role="creator")
    client.force_login(user)
    return user


def _png(seed: int, size: tuple[int, int] = (48, 48), name: str | None = None) -> SimpleUploadedFile:
    rng = random.Random(seed)
    picture = PILImage.new("RGB", size)
    picture.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(size[0] * size[1])])
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return SimpleUploadedFile(name or f"photo-{seed}.png", buffer.getvalue(), content_type="image/png")


def test_a_new_album_of_uploads_skips_duplicates_and_non_images_with_reasons(client, creator, settings):
    settings.IMAGINEER_SCRAPE_MAX_PIXELS = 100 * 100
    files = [
        _png(1),
        _png(2),
        _png(1, name="same-again.png"),
        SimpleUploadedFile("notes.png", b"not a picture"),
        _png(3, size=(120, 120), name="huge.png"),
    ]
    response = client.post(reverse("albums:album-new"), {"name": "My photos", "images": files}, follow=True)
    album = Album.objects.get()
    assert album.source_type == Album.SourceType.UPLOAD and album.created_by == creator
    assert sorted(image.title for image in album.images.all()) == ["photo-1", "photo-2"]
    body = response.content.decode()
    assert "2 images added." in body
    assert "Skipped same-again.png: the same image is already in the album." in body
    assert "Skipped notes.png: not a readable image" in body
    assert "Skipped huge.png: 120x120 is 14,400 pixels, over the 10,000-pixel limit." in body
    leftovers = list((settings.MEDIA_ROOT / "incoming").iterdir())
    assert leftovers == []
    assert len(list((settings.MEDIA_ROOT / "uploads" / album.slug).iterdir())) == 2


def test_new_album_form_names_the_missing_fields(client, creator):
    response = client.post(reverse("albums:album-new"), {"name": ""})
    assert response.status_code == 400 and set(response.context["form"].errors) == {"name", "images"}
    assert not Album.objects.exists()


def test_uploading_into_an_album_is_for_its_owner_or_a_curator(client, creator):
    mine = AlbumFactory(created_by=creator)
    theirs = AlbumFactory(created_by=UserFactory(role="creator"))
    client.post(reverse("albums:album-upload", args=[mine.pk]), {"images": [_png(5)]})
    assert mine.images.count() == 1
    assert client.post(reverse("albums:album-upload", args=[theirs.pk]), {"images": [_png(6)]}).status_code == 403
    assert theirs.images.count() == 0
    page = client.get(reverse("albums:album-detail", args=[mine.pk])).content.decode()
    assert "Upload images into this album" in page


def test_caption_and_tags_by_hand_record_who_wrote_them(client, creator):
    album = AlbumFactory(created_by=creator)
    image = ImageFactory()
    AlbumImageFactory(album=album, image=image)
    LabelFactory(image=image, label_type=Label.LabelType.CAPTION, text="old", source="local")
    response = client.post(
        reverse("albums:image-labels", args=[image.pk]),
        {"caption": " a harbour at dusk ", "tags": "harbour, dusk, harbour"},
    )
    assert response.status_code == 302
    labels = list(image.labels.order_by("id").values_list("label_type", "text", "source", "created_by"))
    assert labels == [
        ("caption", "a harbour at dusk", "manual", creator.pk),
        ("tag", "harbour", "manual", creator.pk),
        ("tag", "dusk", "manual", creator.pk),
    ]
    page = client.get(reverse("albums:album-image", args=[album.pk, image.pk])).content.decode()
    assert f"by {creator.username}" in page and "Edit caption and tags" in page


def test_search_finds_prompts_titles_tags_lora_seed_and_template_and_hides_nsfw(client, creator):
    tagged = ImageFactory(prompt="a lighthouse", title="Ace of lighthouses")
    LabelFactory(image=tagged, text="harbour")
    nsfw = ImageFactory(prompt="a harbour at night", is_nsfw=True)
    made = ImageFactory(prompt="a tarot card")
    template = BatchTemplateFactory(name="Tarot mini")
    from generation.models import BatchGenerationRun

    run = BatchGenerationRun.objects.create(template=template, album=AlbumFactory(), total_items=1)
    GenerationJob.objects.create(
        run=run,
        prompt="a tarot card",
        width=64,
        height=64,
        steps=2,
        guidance_scale=7,
        seed=4242,
        lora_stack=[{"name": "inkwash", "sha256": "ab", "weight": "0.6"}],
        result_image=made,
    )

    def found(**params):
        response = client.get(reverse("albums:search"), params)
        assert response.status_code == 200
        return {image.pk for image in response.context["page"]}

    assert found(q="harbour") == {tagged.pk, nsfw.pk}
    assert found(q="harbour", nsfw="hide") == {tagged.pk}
    assert found(q="lighthouses") == {tagged.pk}  # the title, stemmed
    assert found(lora="inkwash") == {made.pk}
    assert found(seed="4242") == {made.pk}
    assert found(template="Tarot mini") == {made.pk}
    api = client.get("/api/images", {"q": "harbour", "is_nsfw": "false"}).json()
    assert [item["id"] for item in api["results"]] == [tagged.pk]


def test_search_substring_fallback_matches_every_word():
    tagged = ImageFactory(prompt="a lighthouse")
    LabelFactory(image=tagged, text="harbour")
    ImageFactory(prompt="a harbour")
    assert list(_text_match_substrings(Image.objects.all(), "lighthouse HARB")) == [tagged]


def test_search_bad_filters_are_named_and_query_count_is_constant(client, creator):
    response = client.get(reverse("albums:search"), {"seed": "-1", "date_from": "2026-02-01", "date_to": "2026-01-01"})
    assert response.status_code == 400 and set(response.context["form"].errors) == {"seed", "date_to"}
    for _ in range(2):
        LabelFactory(image=ImageFactory(prompt="a card"), text="card")
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("albums:search"), {"q": "card"})
    for _ in range(10):
        LabelFactory(image=ImageFactory(prompt="a card"), text="card")
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("albums:search"), {"q": "card"})
    assert len(many) == len(few)
    assert ImageSearchForm({"q": "x" * 201}).errors.keys() == {"q"}


def test_a_viewer_meets_the_sites_own_403_page_with_the_menu_and_no_generate_link(client):
    client.force_login(UserFactory(role="viewer"))
    response = client.get(reverse("generation:generate"))
    body = response.content.decode()
    assert response.status_code == 403
    assert "<title>Not allowed · Imagineer</title>" in body
    assert "Ask a curator for the creator role." in body and 'aria-label="Main"' in body
    assert 'href="/generate/"' not in body and 'href="/albums/"' in body
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and "<title>Not found · Imagineer</title>" in missing.content.decode()


def test_the_500_page_has_the_menu_and_says_what_to_do(rf):
    from imagineer.api_views import handler500

    body = handler500(rf.get("/albums/")).content.decode()
    assert "<title>Something went wrong · Imagineer</title>" in body and 'aria-label="Main"' in body
    assert "The error has been logged" in body


def test_pages_name_the_favicon_and_one_menu_item_is_current_on_training_pages(client):
    client.force_login(UserFactory(role="creator"))
    body = client.get("/training/").content.decode()
    assert 'rel="icon" href="/static/img/favicon.svg"' in body
    assert body.count('aria-current="page"') == 1
    assert client.get("/favicon.ico")["Location"] == "/static/img/favicon.svg"


def test_the_account_page_names_a_superusers_role(client):
    client.force_login(UserFactory(role="viewer", is_superuser=True))
    body = client.get(reverse("account")).content.decode()
    assert "administrator (superuser" in body and "viewer (superuser)" not in body


def _album_of(owner, count: int) -> tuple[Album, list[Image]]:
    album = AlbumFactory.create(created_by=owner)
    images = [ImageFactory.create(created_by=owner) for _ in range(count)]
    for position, image in enumerate(images, start=1):
        AlbumImageFactory(album=album, image=image, position=position)
    return album, images


def _order(album: Album) -> list[int]:
    return list(album.memberships.order_by("position", "id").values_list("image_id", flat=True))


def test_ticked_images_are_removed_added_made_into_an_album_or_deleted(client, creator):
    album, images = _album_of(creator, 4)
    other = AlbumFactory(created_by=creator, name="Keepers")
    url = reverse("albums:album-images", args=[album.pk])
    page = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert 'form="album-images-form"' in page and "Keepers" in page

    client.post(url, {"action": "add", "images": [images[0].pk, images[1].pk], "target": other.pk})
    assert _order(other) == [images[0].pk, images[1].pk]
    response = client.post(url, {"action": "new_album", "images": [images[2].pk], "name": "Picked"}, follow=True)
    picked = Album.objects.get(name="Picked")
    assert picked.source_type == Album.SourceType.MANUAL and _order(picked) == [images[2].pk]
    assert response.redirect_chain[-1][0] == reverse("albums:album-detail", args=[picked.pk])
    client.post(url, {"action": "remove", "images": [images[0].pk]})
    assert _order(album) == [image.pk for image in images[1:]] and Image.objects.filter(pk=images[0].pk).exists()
    client.post(url, {"action": "delete", "images": [images[3].pk]})
    assert not Image.objects.filter(pk=images[3].pk).exists()


def test_curation_refusals_name_the_field_or_refuse_other_peoples_images(client, creator):
    album, images = _album_of(creator, 1)
    url = reverse("albums:album-images", args=[album.pk])
    for data, message in [
        ({"action": "remove"}, "Tick one or more images first."),
        ({"action": "add", "images": [images[0].pk]}, "Choose the album to add the images to."),
        ({"action": "new_album", "images": [images[0].pk]}, "Give the new album a name."),
        ({"action": "remove", "images": [999999]}, "Select a valid choice"),
    ]:
        messages = [str(m) for m in client.post(url, data, follow=True).context["messages"]]
        assert any(message in text for text in messages), (data, messages)
    theirs = ImageFactory(created_by=UserFactory(role="creator"))
    AlbumImageFactory(album=album, image=theirs, position=2)
    assert client.post(url, {"action": "delete", "images": [images[0].pk, theirs.pk]}).status_code == 403
    assert Image.objects.filter(pk__in=[images[0].pk, theirs.pk]).count() == 2  # nothing half-done


def test_images_move_earlier_and_later_in_their_album(client, creator):
    album, images = _album_of(creator, 3)
    url = reverse("albums:album-move", args=[album.pk])
    client.post(url, {"move": f"{images[2].pk}:-1"})
    assert _order(album) == [images[0].pk, images[2].pk, images[1].pk]
    client.post(url, {"move": f"{images[0].pk}:-1"})  # already first: nothing moves
    assert _order(album) == [images[0].pk, images[2].pk, images[1].pk]
    assert client.post(url, {"move": "junk"}).status_code == 400
    assert client.post(url, {"move": f"{ImageFactory().pk}:1"}).status_code == 404
    client.force_login(UserFactory(role="creator"))
    assert client.post(url, {"move": f"{images[1].pk}:-1"}).status_code == 403
