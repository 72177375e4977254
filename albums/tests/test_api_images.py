"""/api/images, /api/images/<id>, its file and thumbnail."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image as PILImage

from albums.models import Image
from imagineer.tests.factories import AlbumImageFactory, ImageFactory, LabelFactory

pytestmark = pytest.mark.django_db


def test_list_filters_by_album_nsfw_label_date_and_searches_prompt(api_as):
    client = api_as("viewer")
    in_album = AlbumImageFactory(image=ImageFactory(prompt="a brass owl")).image
    nsfw = ImageFactory(prompt="a red dragon", is_nsfw=True, nsfw_rating=Image.NsfwRating.ADULT)
    tagged = ImageFactory(prompt="a blue whale")
    LabelFactory(image=tagged, text="whale")
    old = ImageFactory(prompt="an old map")
    Image.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    def ids(**params):
        response = client.get("/api/images", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {in_album.pk, nsfw.pk, tagged.pk, old.pk}
    assert ids(album=in_album.albums.first().pk) == {in_album.pk}
    assert ids(is_nsfw="true") == {nsfw.pk}
    assert ids(nsfw_rating="ADULT") == {nsfw.pk}
    assert ids(label="whale") == {tagged.pk}
    assert ids(search="owl") == {in_album.pk}
    assert ids(created_before=(timezone.now() - timedelta(days=5)).isoformat()) == {old.pk}
    assert ids(created_after=(timezone.now() - timedelta(days=5)).isoformat()) == {in_album.pk, nsfw.pk, tagged.pk}


def test_bad_filter_values_are_400s(api_as):
    client = api_as("viewer")
    assert client.get("/api/images", {"created_after": "yesterday"}).status_code == 400
    assert client.get("/api/images", {"album": "abc"}).status_code == 400
    assert client.get("/api/images", {"nsfw_rating": "MILD"}).status_code == 400


def test_detail_with_and_without_labels(api_as):
    client = api_as("viewer")
    image = AlbumImageFactory().image
    LabelFactory(image=image, text="owl")
    plain = client.get(f"/api/images/{image.pk}").json()
    assert "labels" not in plain
    assert plain["album_ids"] == [image.albums.first().pk]
    assert plain["file_url"].endswith(f"/api/images/{image.pk}/file")
    labelled = client.get(f"/api/images/{image.pk}", {"include": "labels"}).json()
    assert [label["text"] for label in labelled["labels"]] == ["owl"]
    assert client.get("/api/images/999999").status_code == 404


@pytest.mark.parametrize("rows", [3, 30])
def test_image_list_query_count_is_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    for _ in range(rows):
        LabelFactory(image=ImageFactory())
    # session, user, count, images, labels (one prefetch)
    with django_assert_num_queries(5):
        response = client.get("/api/images", {"include": "labels", "page_size": 50})
    assert len(response.json()["results"]) == rows


def test_image_detail_query_count(api_as, django_assert_num_queries):
    client = api_as("viewer")
    image = ImageFactory()
    LabelFactory(image=image)
    # session, user, image, memberships, labels, the user's permissions (2)
    with django_assert_num_queries(7):
        client.get(f"/api/images/{image.pk}", {"include": "labels"})


def test_file_is_served_with_validators_and_304(api_as):
    client = api_as("viewer")
    image = ImageFactory()
    response = client.get(f"/api/images/{image.pk}/file", HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    etag = response["ETag"]
    assert etag == f'"{image.sha256}"'
    assert response["Last-Modified"]
    again = client.get(f"/api/images/{image.pk}/file", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert client.get(f"/api/images/{image.pk}/file", HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_thumbnail_is_made_once_and_cached(api_as, media_root):
    client = api_as("viewer")
    image = ImageFactory(width=600, height=300)
    response = client.get(f"/api/images/{image.pk}/thumbnail", {"size": 200})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    with PILImage.open(io.BytesIO(b"".join(response.streaming_content))) as thumb:
        assert max(thumb.size) == 256  # rounded up to a cached size
    cached = list((media_root / "thumbs").rglob("*.webp"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    client.get(f"/api/images/{image.pk}/thumbnail", {"size": 256})
    assert cached[0].stat().st_mtime_ns == mtime
    assert (
        client.get(f"/api/images/{image.pk}/thumbnail", {"size": 256}, HTTP_IF_NONE_MATCH=response["ETag"]).status_code
        == 304
    )


def test_thumbnail_size_must_be_a_positive_number(api_as):
    client = api_as("viewer")
    image = ImageFactory()
    for size in ("big", "0", "-5"):
        response = client.get(f"/api/images/{image.pk}/thumbnail", {"size": size})
        assert response.status_code == 400
        assert "size" in response.json()["error"]["fields"]


def test_file_views_refuse_anonymous_missing_and_escaping_paths(api_as):
    image = ImageFactory()
    assert api_as(None).get(f"/api/images/{image.pk}/file").status_code == 401
    client = api_as("viewer")
    assert client.get("/api/images/999999/file").status_code == 404
    escaping = ImageFactory(file="../../etc/passwd")
    response = client.get(f"/api/images/{escaping.pk}/file")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    missing = ImageFactory(file="outputs/test/gone.png")
    assert client.get(f"/api/images/{missing.pk}/thumbnail").status_code == 404
