"""/api/albums and /api/albums/<id>."""

from __future__ import annotations

import pytest

from albums.models import Album
from imagineer.tests.factories import AlbumFactory, AlbumImageFactory, ImageFactory

pytestmark = pytest.mark.django_db


def _album_with_images(count: int, **album_fields) -> Album:
    album = AlbumFactory.create(**album_fields)
    for position in range(count):
        AlbumImageFactory(album=album, image=ImageFactory(), position=position)
    return album


def test_list_albums_with_counts_covers_and_filters(api_as):
    client = api_as("viewer")
    batch = _album_with_images(2, name="Steampunk deck", source_type=Album.SourceType.BATCH_GENERATION)
    scraped = _album_with_images(1, name="Gothic refs", source_type=Album.SourceType.SCRAPE)

    response = client.get("/api/albums")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    by_id = {row["id"]: row for row in body["results"]}
    assert by_id[batch.pk]["image_count"] == 2
    first = batch.memberships.order_by("position").first().image_id
    assert by_id[batch.pk]["cover_image_id"] == first
    assert by_id[batch.pk]["cover_thumbnail_url"].endswith(f"/api/images/{first}/thumbnail")

    filtered = client.get("/api/albums", {"source_type": "scrape"}).json()
    assert [row["id"] for row in filtered["results"]] == [scraped.pk]
    searched = client.get("/api/albums", {"search": "steampunk"}).json()
    assert [row["id"] for row in searched["results"]] == [batch.pk]
    ordered = client.get("/api/albums", {"ordering": "name"}).json()
    assert [row["name"] for row in ordered["results"]] == ["Gothic refs", "Steampunk deck"]


def test_unknown_source_type_is_a_400_naming_the_field(api_as):
    response = api_as("viewer").get("/api/albums", {"source_type": "bogus"})
    assert response.status_code == 400
    assert "source_type" in response.json()["error"]["fields"]


def test_album_detail_lists_images_in_album_order_paginated(api_as):
    client = api_as("viewer")
    album = AlbumFactory()
    images = [ImageFactory() for _ in range(5)]
    for position, image in zip([4, 0, 3, 1, 2], images, strict=True):
        AlbumImageFactory(album=album, image=image, position=position)
    expected = [image.pk for _, image in sorted(zip([4, 0, 3, 1, 2], images, strict=True))]

    body = client.get(f"/api/albums/{album.pk}", {"page_size": 2}).json()
    assert body["name"] == album.name
    assert body["image_count"] == 5
    assert body["images"]["count"] == 5
    assert [image["id"] for image in body["images"]["results"]] == expected[:2]
    assert [image["position"] for image in body["images"]["results"]] == [0, 1]
    second = client.get(body["images"]["next"]).json()
    assert [image["id"] for image in second["images"]["results"]] == expected[2:4]


def test_album_detail_404_and_auth(api_as):
    album = AlbumFactory()
    assert api_as("viewer").get("/api/albums/999999").status_code == 404
    anonymous = api_as(None).get(f"/api/albums/{album.pk}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert api_as(None).get("/api/albums").status_code == 401


def test_albums_are_read_only(api_as):
    album = AlbumFactory()
    assert api_as("curator").delete(f"/api/albums/{album.pk}").status_code == 405
    assert api_as("curator").post("/api/albums", {"name": "x"}, format="json").status_code == 405


@pytest.mark.parametrize("rows", [3, 30])
def test_album_list_query_count_is_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    for _ in range(rows):
        _album_with_images(2)
    # session, user, count, albums (counts, covers and runs are annotations)
    with django_assert_num_queries(4):
        response = client.get("/api/albums", {"page_size": 50})
    assert len(response.json()["results"]) == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_album_detail_query_count_is_constant(api_as, django_assert_num_queries, rows):
    client = api_as("viewer")
    album = _album_with_images(rows)
    # session, user, album (+ annotations), the user's permissions (2), image count, images page
    with django_assert_num_queries(7):
        response = client.get(f"/api/albums/{album.pk}")
    assert len(response.json()["images"]["results"]) == rows
