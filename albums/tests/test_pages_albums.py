"""Album and image pages: content, NSFW blur, sort/filter, zip download, query counts."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from albums.models import Album, AlbumImage
from albums.preferences import NSFW_BLUR_COOKIE
from generation.models import GenerationJob
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory, LabelFactory, UserFactory
from labeling.models import LabelingJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(UserFactory(role="viewer"))
    return client


@pytest.fixture
def creator_client(client):
    client.force_login(UserFactory(role="creator"))
    return client


def album_with_images(count: int, **album_kwargs) -> Album:
    album = AlbumFactory.create(**album_kwargs)
    for position in range(count):
        AlbumImageFactory(album=album, position=position, image=ImageFactory(title=f"card {position:02d}"))
    return album


def test_pages_require_sign_in(client):
    album = album_with_images(1)
    image_id = album.memberships.get().image_id
    for url in (
        reverse("albums:album-list"),
        reverse("albums:album-detail", args=[album.pk]),
        reverse("albums:album-image", args=[album.pk, image_id]),
        reverse("albums:album-download", args=[album.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/accounts/login/" in response["Location"]


def test_album_list_shows_covers_counts_and_filters_by_source(viewer_client):
    batch = album_with_images(2, name="Zodiac in art deco", source_type=Album.SourceType.BATCH_GENERATION)
    album_with_images(1, name="Scraped birds", source_type=Album.SourceType.SCRAPE)
    response = viewer_client.get(reverse("albums:album-list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>Albums · Imagineer</title>" in body
    assert "Zodiac in art deco" in body and "Scraped birds" in body
    assert "2 images · Batch generation" in body
    cover = batch.memberships.order_by("position").first()
    assert reverse("albums:image-thumbnail", args=[cover.image_id]) in body

    filtered = viewer_client.get(reverse("albums:album-list"), {"source": "scrape"}).content.decode()
    assert "Scraped birds" in filtered and "Zodiac in art deco" not in filtered


def test_album_list_query_count_does_not_grow_with_albums(viewer_client):
    album_with_images(2)
    with CaptureQueriesContext(connection) as few:
        viewer_client.get(reverse("albums:album-list"))
    for _ in range(10):
        album_with_images(2)
    with CaptureQueriesContext(connection) as many:
        viewer_client.get(reverse("albums:album-list"))
    assert len(many) == len(few)


def _album_page_queries(client, album: Album) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("albums:album-detail", args=[album.pk]))
    assert response.status_code == 200
    return len(queries)


def test_album_page_uses_a_constant_number_of_queries(viewer_client):
    small, large = album_with_images(3), album_with_images(30)
    for album in (small, large):
        first = album.memberships.order_by("position").first().image
        LabelFactory(image=first, text="gold")
    viewer_client.get(reverse("albums:album-detail", args=[small.pk]))  # warm the session and permission caches
    assert _album_page_queries(viewer_client, small) == _album_page_queries(viewer_client, large) == 10


def test_album_page_shows_images_in_order_with_lazy_thumbnails(viewer_client):
    album = album_with_images(3, name="Tarot")
    response = viewer_client.get(reverse("albums:album-detail", args=[album.pk]))
    body = response.content.decode()
    assert "<title>Tarot · Imagineer</title>" in body
    ids = list(album.memberships.order_by("position").values_list("image_id", flat=True))
    links = [body.index(reverse("albums:album-image", args=[album.pk, image_id])) for image_id in ids]
    assert links == sorted(links)
    assert body.count('loading="lazy"') >= 3
    assert reverse("albums:album-download", args=[album.pk]) in body
    assert "{% block" not in body


def test_album_page_sorts_and_filters_by_nsfw_and_label(viewer_client):
    album = AlbumFactory()
    safe = AlbumImageFactory(album=album, position=0, image=ImageFactory(title="safe one")).image
    nsfw = AlbumImageFactory(album=album, position=1, image=ImageFactory(title="nsfw one", is_nsfw=True)).image
    LabelFactory(image=safe, text="moon")
    url = reverse("albums:album-detail", args=[album.pk])

    def shown(**params) -> list[int]:
        body = viewer_client.get(url, params).content.decode()
        return [img.pk for img in (safe, nsfw) if reverse("albums:album-image", args=[album.pk, img.pk]) in body]

    assert shown() == [safe.pk, nsfw.pk]
    assert shown(nsfw="hide") == [safe.pk]
    assert shown(nsfw="only") == [nsfw.pk]
    assert shown(label="moon") == [safe.pk]
    newest_first = viewer_client.get(url, {"sort": "newest"}).content.decode()
    assert newest_first.index(f"/images/{nsfw.pk}/") < newest_first.index(f"/images/{safe.pk}/")
    assert "No images match these filters." in viewer_client.get(url, {"label": "nothing"}).content.decode()


def test_album_page_links_to_the_neighbouring_albums(viewer_client):
    older, middle, newer = AlbumFactory(name="Older"), AlbumFactory(name="Middle"), AlbumFactory(name="Newer")
    body = viewer_client.get(reverse("albums:album-detail", args=[middle.pk])).content.decode()
    assert f'href="{reverse("albums:album-detail", args=[newer.pk])}" rel="prev"' in body
    assert f'href="{reverse("albums:album-detail", args=[older.pk])}" rel="next"' in body


def test_nsfw_images_are_blurred_until_the_viewer_turns_blurring_off(viewer_client):
    album = AlbumFactory()
    AlbumImageFactory(album=album, image=ImageFactory(is_nsfw=True, nsfw_rating="ADULT"))
    url = reverse("albums:album-detail", args=[album.pk])
    body = viewer_client.get(url).content.decode()
    assert 'class="nsfw-blur"' in body
    assert 'class="tile nsfw"' in body and "data-reveal" in body

    response = viewer_client.post(reverse("albums:nsfw-blur"), {"blur": "off", "next": url})
    assert response.status_code == 302 and response["Location"] == url
    assert response.cookies[NSFW_BLUR_COOKIE].value == "0"
    assert 'class="nsfw-blur"' not in viewer_client.get(url).content.decode()

    viewer_client.post(reverse("albums:nsfw-blur"), {"blur": "on", "next": "https://evil.example/"})
    assert 'class="nsfw-blur"' in viewer_client.get(url).content.decode()


def test_blur_preference_survives_a_new_session_through_its_cookie(client):
    user = UserFactory(role="viewer")
    client.force_login(user)
    cookie = client.post(reverse("albums:nsfw-blur"), {"blur": "off"}).cookies[NSFW_BLUR_COOKIE]
    client.logout()  # the test client drops every cookie here; a browser keeps this one
    client.cookies[NSFW_BLUR_COOKIE] = cookie.value
    client.force_login(user)
    assert 'class="nsfw-blur"' not in client.get(reverse("albums:album-list")).content.decode()


def test_image_page_shows_recipe_labels_and_neighbours(viewer_client):
    album = AlbumFactory(name="Zodiac")
    first, second, third = (
        AlbumImageFactory(album=album, position=index, image=ImageFactory(width=64, height=96)).image
        for index in range(3)
    )
    GenerationJob.objects.create(
        prompt="a zodiac card, art deco, Aries, fire element, high detail",
        negative_prompt="blurry",
        prompt_parts={
            "base_prompt": "a zodiac card",
            "theme": "art deco",
            "row_text": "Aries, fire element",
            "row": {"sign": "Aries"},
        },
        width=64,
        height=96,
        steps=2,
        guidance_scale=7.5,
        seed=424242,
        lora_stack=[{"name": "inkwash", "sha256": "ab" * 32, "weight": "0.60"}],
        status=GenerationJob.Status.SUCCEEDED,
        result_image=second,
    )
    second.recipe = {"model": {"id": "imagineer/tiny-sd15-random", "sha256": "abcdef123456", "is_noise_model": True}}
    second.save(update_fields=["recipe"])
    LabelFactory(image=second, label_type="caption", text="A ram made of gold", source="local")
    LabelFactory(image=second, text="ram")
    response = viewer_client.get(reverse("albums:album-image", args=[album.pk, second.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    for expected in (
        "424242",
        "Aries, fire element",
        "art deco",
        "inkwash @ 0.60",
        "7.5",
        "64×96",
        "A ram made of gold",
    ):
        assert expected in body, expected
    assert "imagineer/tiny-sd15-random [abcdef1234] (built-in noise model)" in body
    assert "{&#x27;sign&#x27;" not in body  # structured parts are not dumped as text
    assert "Image 2 of 3 in Zodiac" in body
    assert f'href="{reverse("albums:album-image", args=[album.pk, first.pk])}" data-key-prev' in body
    assert f'href="{reverse("albums:album-image", args=[album.pk, third.pk])}" data-key-next' in body
    assert f'{reverse("albums:image-file", args=[second.pk])}" download' in body
    # A viewer may not generate: no regenerate buttons.
    assert "Generate again with this recipe" not in body


def test_image_page_offers_regenerate_and_label_to_creators(client):
    owner = UserFactory(role="creator")
    album = AlbumFactory(created_by=owner)
    image = AlbumImageFactory(album=album, image=ImageFactory(recipe={"seed": 7, "steps": 2})).image
    client.force_login(owner)
    body = client.get(reverse("albums:album-image", args=[album.pk, image.pk])).content.decode()
    assert "Generate again with this recipe" in body and "New seed" in body
    assert reverse("albums:image-label", args=[image.pk]) in body
    # Another creator may generate from the recipe, but not relabel someone else's image.
    client.force_login(UserFactory(role="creator"))
    body = client.get(reverse("albums:album-image", args=[album.pk, image.pk])).content.decode()
    assert "Generate again with this recipe" in body
    assert reverse("albums:image-label", args=[image.pk]) not in body


def test_image_by_id_redirects_into_its_album_or_stands_alone(viewer_client):
    membership = AlbumImageFactory()
    response = viewer_client.get(reverse("albums:image-detail", args=[membership.image_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("albums:album-image", args=[membership.album_id, membership.image_id])
    # A single generation's image is in no album: its page stands alone.
    alone = viewer_client.get(reverse("albums:image-detail", args=[ImageFactory(title="lone fox").pk]))
    assert alone.status_code == 200
    assert (
        "<title>lone fox · Imagineer</title>" in alone.content.decode()
        and "data-key-next" not in alone.content.decode()
    )
    assert viewer_client.get(reverse("albums:image-detail", args=[10**9])).status_code == 404


def test_download_all_streams_a_zip_in_album_order(viewer_client, media_root):
    album = AlbumFactory(slug="zodiac-deco")
    images = [
        AlbumImageFactory(album=album, position=position, image=ImageFactory(title=title)).image
        for position, title in ((2, "Gemini"), (0, "Aries"), (1, "Taurus"))
    ]
    response = viewer_client.get(reverse("albums:album-download", args=[album.pk]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="zodiac-deco.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["001-aries.png", "002-taurus.png", "003-gemini.png"]
    by_title = {image.title: image for image in images}
    assert archive.read("001-aries.png") == (media_root / by_title["Aries"].file.name).read_bytes()
    assert archive.testzip() is None


def test_label_buttons_start_labeling_for_creators_only(client):
    album = AlbumFactory(created_by=UserFactory(role="creator"))
    image = AlbumImageFactory(album=album).image
    client.force_login(UserFactory(role="viewer"))
    assert "Label with AI" not in client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert client.post(reverse("albums:album-label", args=[album.pk])).status_code == 403

    client.force_login(UserFactory(role="creator"))  # not the album's owner
    assert "Label with AI" not in client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert client.post(reverse("albums:album-label", args=[album.pk])).status_code == 403

    client.force_login(album.created_by)
    assert "Label with AI" in client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    response = client.post(reverse("albums:album-label", args=[album.pk]))
    assert response.status_code == 302
    job = LabelingJob.objects.get(album=album)
    assert job.progress_total == 1
    body = client.get(reverse("albums:album-detail", args=[album.pk])).content.decode()
    assert "AI labels: 0/1 done" in body
    # A second start while the first runs is refused with the service's words.
    client.post(reverse("albums:album-label", args=[album.pk]))
    messages = [str(m) for m in client.get(reverse("albums:album-list")).context["messages"]]
    assert any("already being labelled" in message for message in messages)
    assert client.post(reverse("albums:image-label", args=[image.pk]), {"album": album.pk}).status_code == 302
    assert AlbumImage.objects.filter(album=album).count() == 1


def test_image_page_query_count_does_not_depend_on_album_size_or_labels(viewer_client):
    def queries(album: Album) -> int:
        membership = album.memberships.order_by("position")[1]
        for text in ("a", "b", "c"):
            LabelFactory(image=membership.image, text=f"{text}{album.pk}")
        url = reverse("albums:album-image", args=[album.pk, membership.image_id])
        viewer_client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert viewer_client.get(url).status_code == 200
        return len(captured)

    assert queries(album_with_images(3)) == queries(album_with_images(30))
